//! Where to go after logging in (`next`): a path on this site, never another site.

/// Longest `next` accepted, in bytes: room for any page's path and query, while a URL built to
/// carry something else is refused whole rather than cut.
pub const MAX_BYTES: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath(String);

impl ReturnPath {
    /// A path on this site, or nothing. Browsers read `//host` and `/\host` as another host, and
    /// anything not starting with `/` (`https://…`, `javascript:…`) is no path of ours. A control
    /// character would end up in the `Location` header. Characters outside printable ASCII
    /// (a hand-typed `/search?q=Привет мир`) are percent-encoded, so the header is plain ASCII.
    pub fn parse(input: &str) -> Option<Self> {
        let acceptable = input.len() <= MAX_BYTES
            && input.starts_with('/')
            && !input.starts_with("//")
            && !input.starts_with("/\\")
            && !input.chars().any(char::is_control);
        acceptable.then(|| Self(encode_non_ascii(input)))
    }

    /// The path, or home when `input` is not an acceptable one.
    pub fn or_home(input: Option<&str>) -> Self {
        input
            .and_then(Self::parse)
            .unwrap_or_else(|| Self("/".to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_home(&self) -> bool {
        self.0 == "/"
    }
}

fn encode_non_ascii(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for byte in input.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_kept_with_their_query() {
        for path in [
            "/",
            "/rooms/0123456789abcdef01234567",
            "/search?q=abcdef&x=%2F%2F",
            "/a/b\\c",
        ] {
            assert_eq!(
                ReturnPath::parse(path).map(|p| p.0),
                Some(path.to_owned()),
                "{path}"
            );
        }
        assert_eq!(
            ReturnPath::parse(&format!("/{}", "a".repeat(MAX_BYTES - 1))).map(|p| p.0.len()),
            Some(MAX_BYTES),
            "exactly the limit"
        );
    }

    #[test]
    fn other_sites_and_malformed_paths_are_refused() {
        let long = format!("/{}", "a".repeat(MAX_BYTES));
        let cases = [
            ("", "empty"),
            ("//evil.example", "protocol-relative URL"),
            ("//evil.example/rooms", "protocol-relative URL with a path"),
            ("/\\evil.example", "backslash read as a slash"),
            ("https://evil.example", "absolute URL"),
            ("javascript:alert(1)", "script URL"),
            ("evil.example/rooms", "relative path"),
            (" /rooms", "leading space"),
            ("/rooms\r\nSet-Cookie: x=1", "header injection"),
            ("/rooms\0", "NUL"),
            ("/\t/evil.example", "tab, which URL parsers drop"),
            ("/rooms\u{85}", "C1 control"),
            (long.as_str(), "longer than the limit"),
        ];
        for (input, why) in cases {
            assert_eq!(ReturnPath::parse(input), None, "{why}: {input:?}");
            assert!(ReturnPath::or_home(Some(input)).is_home(), "{why}");
        }
        assert!(ReturnPath::or_home(None).is_home());
    }

    #[test]
    fn characters_outside_printable_ascii_are_percent_encoded() {
        assert_eq!(
            ReturnPath::parse("/search?q=Привет мир").unwrap().as_str(),
            "/search?q=%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82%20%D0%BC%D0%B8%D1%80"
        );
    }
}
