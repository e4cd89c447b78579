//! `website healthcheck` and `chat healthcheck` (the images are distroless: no curl): one request
//! to 127.0.0.1 on the port the service listens on (read as the service reads it), judged by the
//! service. Exit 0 when healthy or degraded (the reason on stderr), 1 otherwise.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use crate::env::{ConfigError, Env};

/// How long the probe waits to connect, and then for each read and write.
pub const TIMEOUT: Duration = Duration::from_secs(3);

pub struct Probe {
    pub addr_var: &'static str,
    pub default_addr: SocketAddr,
    /// The request head, sent as is (it ends with an empty line).
    pub request: &'static str,
    pub judge: fn(&Head) -> Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Healthy,
    /// Serving, with a part missing: still exit 0, the reason on stderr.
    Degraded(String),
    Unhealthy(String),
}

impl Probe {
    pub fn port<L: Fn(&str) -> Option<String>>(&self, env: &Env<L>) -> Result<u16, ConfigError> {
        Ok(env.parse_or(self.addr_var, self.default_addr)?.port())
    }

    pub fn check(&self, port: u16) -> Verdict {
        match ask(port, self.request) {
            Ok(head) => (self.judge)(&head),
            Err(error) => Verdict::Unhealthy(error.to_string()),
        }
    }

    pub fn run(&self) -> ExitCode {
        let port = match self.port(&Env::new(|name| std::env::var(name).ok())) {
            Ok(port) => port,
            Err(error) => {
                eprintln!("healthcheck: {error}");
                return ExitCode::FAILURE;
            }
        };
        match self.check(port) {
            Verdict::Healthy => ExitCode::SUCCESS,
            Verdict::Degraded(why) => {
                eprintln!("healthcheck: degraded: {why}");
                ExitCode::SUCCESS
            }
            Verdict::Unhealthy(why) => {
                eprintln!("healthcheck: {why}");
                ExitCode::FAILURE
            }
        }
    }
}

fn ask(port: u16, request: &str) -> std::io::Result<Head> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(request.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::other(format!("not an HTTP answer: {:?}", status_line.trim_end()))
        })?;
    let mut headers = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && !line.trim().is_empty() {
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        line.clear();
    }
    Ok(Head { status, headers })
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpListener;

    use super::*;

    fn judge(head: &Head) -> Verdict {
        match (head.status, head.header("x-part")) {
            (200, None) => Verdict::Healthy,
            (200, Some(part)) => Verdict::Degraded(part.to_owned()),
            (status, _) => Verdict::Unhealthy(format!("answered {status}")),
        }
    }

    const PROBE: Probe = Probe {
        addr_var: "SERVICE_ADDR",
        default_addr: SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8000),
        request: "GET /healthz HTTP/1.0\r\n\r\n",
        judge,
    };

    /// A server on a free port that answers one request with `answer`.
    fn answering(answer: &'static str) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.read(&mut [0u8; 1024]);
            stream.write_all(answer.as_bytes()).unwrap();
        });
        port
    }

    #[test]
    fn the_port_is_that_of_the_services_own_address_setting() {
        let env = |value: Option<&'static str>| {
            Env::new(move |name: &str| {
                (name == "SERVICE_ADDR")
                    .then_some(value)
                    .flatten()
                    .map(String::from)
            })
        };
        assert_eq!(PROBE.port(&env(None)).unwrap(), 8000, "the default");
        assert_eq!(
            PROBE.port(&env(Some("  "))).unwrap(),
            8000,
            "blank is unset"
        );
        assert_eq!(PROBE.port(&env(Some("127.0.0.1:9123"))).unwrap(), 9123);
        assert!(PROBE.port(&env(Some("nowhere"))).is_err());
    }

    #[test]
    fn the_service_judges_the_answer() {
        let cases = [
            ("HTTP/1.1 200 OK\r\n\r\n", Verdict::Healthy),
            (
                "HTTP/1.1 200 OK\r\nX-Part: down\r\n\r\n",
                Verdict::Degraded("down".into()),
            ),
            (
                "HTTP/1.0 503 Service Unavailable\r\n\r\n",
                Verdict::Unhealthy("answered 503".into()),
            ),
        ];
        for (answer, verdict) in cases {
            assert_eq!(PROBE.check(answering(answer)), verdict, "{answer:?}");
        }
        assert!(matches!(
            PROBE.check(answering("nonsense\r\n\r\n")),
            Verdict::Unhealthy(_)
        ));
    }
}
