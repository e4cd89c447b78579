//! An account's email: trimmed, NFKC-normalised, lower-cased, plausibly shaped, and one account
//! per address a person reads: characters that look alike or show nothing cannot make a second
//! account that reads like the first (website/README.md, "Emails").

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use super::{ValidationError, is_invisible};

/// RFC 5321 caps a forward path at 256 octets including the angle brackets.
const MAX_LEN: usize = 254;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalises and checks the shape. Deliverability is not our business: the only promise is
    /// that two spellings of one address are one account.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let email = input.trim().nfkc().collect::<String>().to_lowercase();
        let well_formed = email.len() <= MAX_LEN
            && !email.chars().any(|c| c.is_control() || is_invisible(c))
            && !email.split(['@', '.']).any(mixes_look_alike_scripts)
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

/// The scripts whose letters pass for one another (`а`, `о`, `р`, `е` in Cyrillic, `ο`, `ν` in
/// Greek look like Latin letters).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Greek,
    Cyrillic,
}

fn script(c: char) -> Option<Script> {
    match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' => {
            Some(Script::Latin)
        }
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Some(Script::Greek),
        '\u{0400}'..='\u{052F}' | '\u{1C80}'..='\u{1C8F}' | '\u{2DE0}'..='\u{2DFF}' => {
            Some(Script::Cyrillic)
        }
        _ => None,
    }
}

/// Whether one label (the local part, or a part of the domain between dots) mixes letters of two
/// of those scripts: `pаypal` with a Cyrillic `а` is refused, `почта@пример.рф` is not.
fn mixes_look_alike_scripts(label: &str) -> bool {
    let mut scripts = label.chars().filter_map(script);
    match scripts.next() {
        Some(first) => scripts.any(|other| other != first),
        None => false,
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

    #[test]
    fn spellings_that_read_alike_are_one_address() {
        for (input, why) in [
            ("ＡＮＮ@example.org", "fullwidth letters"),
            ("ann@exam\u{FF50}le.org", "a fullwidth letter in the domain"),
            ("ann@example.org\u{3000}", "an ideographic space around it"),
        ] {
            let email = Email::parse(input).unwrap_or_else(|_| panic!("{why}: refused"));
            assert_eq!(email.as_str(), "ann@example.org", "{why}");
        }
        assert_eq!(
            Email::parse("caf\u{0065}\u{0301}@example.org").unwrap(),
            Email::parse("caf\u{00E9}@example.org").unwrap(),
            "a decomposed and a composed é"
        );
    }

    #[test]
    fn invisible_characters_and_look_alike_letters_are_refused() {
        let cases = [
            ("an\u{200B}n@example.org", "a zero-width space"),
            ("ann\u{200D}@example.org", "a zero-width joiner"),
            ("\u{FEFF}ann@example.org", "a byte order mark"),
            ("ann@exa\u{00AD}mple.org", "a soft hyphen"),
            ("ann\u{200E}@example.org", "a direction mark"),
            ("\u{0430}nn@example.org", "a Cyrillic а among Latin letters"),
            (
                "ann@ex\u{0430}mple.org",
                "a Cyrillic а in a Latin domain label",
            ),
            ("ann@example.\u{03BF}rg", "a Greek ο in a Latin label"),
        ];
        for (input, why) in cases {
            assert_eq!(
                Email::parse(input),
                Err(ValidationError::InvalidEmail),
                "{why}: {input:?} was accepted"
            );
        }
        for input in ["почта@пример.рф", "ann@пример.рф", "élodie@example.org"]
        {
            assert!(Email::parse(input).is_ok(), "{input:?} was refused");
        }
    }
}
