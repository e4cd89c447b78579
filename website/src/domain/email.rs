//! An account's email: trimmed, lower-cased, plausibly shaped.

use std::fmt;

use super::ValidationError;

/// RFC 5321 caps a forward path at 256 octets including the angle brackets.
const MAX_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalises (trim, lower-case) and checks the shape. Deliverability is not our business:
    /// the only promise is that two spellings of one address are one account.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let email = input.trim().to_lowercase();
        let well_formed = email.len() <= MAX_LEN
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                        && !domain.contains("..")
                }
                None => false,
            };
        if well_formed {
            Ok(Self(email))
        } else {
            Err(ValidationError::InvalidEmail)
        }
    }

    /// For values read back from the database or the session, which were parsed when written.
    pub fn from_trusted(email: String) -> Self {
        Self(email)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(Email::parse("  A@X.io ").unwrap().as_str(), "a@x.io");
        assert_eq!(
            Email::parse("A@X.io").unwrap(),
            Email::parse("a@x.io").unwrap()
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        let cases = [
            ("", "empty"),
            ("plainaddress", "no @"),
            ("@x.io", "no local part"),
            ("a@", "no domain"),
            ("a@b@x.io", "two @"),
            ("a b@x.io", "inner space"),
            ("a@localhost", "no dot in the domain"),
            ("a@.x.io", "domain starts with a dot"),
            ("a@x..io", "empty domain label"),
        ];
        for (input, why) in cases {
            assert!(
                Email::parse(input).is_err(),
                "{why}: {input:?} was accepted"
            );
        }
        let long = format!("{}@x.io", "a".repeat(250));
        assert!(Email::parse(&long).is_err(), "longer than 254 bytes");
    }
}
