//! A reconnect storm's ticket requests through nginx: what the website, and MongoDB behind it,
//! answer when every open chat page asks for a ticket within the same second, as after a chat
//! restart (each page asks once: website/README.md, "The chat page").
//!
//!   ticket-storm --url http://127.0.0.1:8080 --people 1000 --pages 5
//!
//! People sign up first, each with a cookie jar of their own; one creates the room. Then each
//! page asks `POST /api/rooms/{id}/ticket` at a random moment of the window, all at once, and
//! asks again 1-2 s after any answer but 200, as the page does, until it holds a ticket.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use rand::Rng;
use reqwest::header::{ACCEPT, ORIGIN};
use reqwest::{Client, StatusCode, redirect};
use tokio::sync::Semaphore;

#[path = "../ranges.rs"]
mod ranges;
use ranges::{DelayRange, SourceAddrs};

#[derive(Parser, Debug)]
#[command(about = "Ticket requests of a reconnect storm through nginx")]
struct Options {
    /// The site, through nginx.
    #[arg(long)]
    url: String,
    /// People signed up, each with a browser of their own.
    #[arg(long, default_value_t = 1000)]
    people: usize,
    /// Open chat pages (tabs) per person in the room; each asks for one ticket.
    #[arg(long, default_value_t = 5)]
    pages: usize,
    /// The window the requests fall in, in milliseconds (the page's first retry waits 0.5-1 s).
    #[arg(long, value_name = "MIN-MAX", default_value = "500-1000")]
    within_ms: DelayRange,
    /// Source addresses, FIRST-LAST or a list: people are spread over them round robin (nginx
    /// limits tickets per address; a storm comes from many).
    #[arg(long, value_name = "ADDRS")]
    source_addrs: Option<SourceAddrs>,
    /// Sign-ups at once.
    #[arg(long, default_value_t = 16)]
    parallel_signups: usize,
}

const PASSWORD: &str = "storm password, long enough";

/// One person's browser: a cookie jar, and the CSRF token of their session.
struct Person {
    http: Client,
    csrf: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    match run(&options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ticket-storm: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options) -> Result<(), String> {
    let base = options.url.trim_end_matches('/').to_owned();
    let run_id: u32 = rand::rng().random();
    let signing_up = Instant::now();
    let gate = Arc::new(Semaphore::new(options.parallel_signups.max(1)));
    let mut signups = Vec::with_capacity(options.people);
    for n in 0..options.people {
        let source = options
            .source_addrs
            .as_ref()
            .map(|SourceAddrs(addrs)| addrs[n % addrs.len()]);
        let (base, gate) = (base.clone(), gate.clone());
        let email = format!("storm-{run_id:08x}-{n}@example.test");
        signups.push(tokio::spawn(async move {
            let _permit = gate.acquire().await;
            sign_up(&base, &email, source).await
        }));
    }
    let mut people = Vec::with_capacity(options.people);
    for signup in signups {
        people.push(signup.await.map_err(|e| e.to_string())??);
    }
    let took = signing_up.elapsed().as_secs_f64();
    say(format_args!(
        "signed up {} people in {took:.1} s ({:.0}/s)",
        people.len(),
        people.len() as f64 / took
    ));
    let title = format!("Storm {run_id:08x}");
    let room = create_room(&base, &people[0], &title).await?;

    let people = Arc::new(people);
    let window = options.within_ms;
    let (min, max) = (window.min_ms, window.max_ms);
    // The page's backoff while the chat is back: 1-2 s.
    let retry = DelayRange {
        min_ms: 1000,
        max_ms: 2000,
    };
    let start = Instant::now() + Duration::from_millis(100);
    let mut pages = Vec::with_capacity(options.people * options.pages);
    for page in 0..options.people * options.pages {
        let at = start + window.pick();
        let (people, base, room) = (people.clone(), base.clone(), room.clone());
        pages.push(tokio::spawn(async move {
            tokio::time::sleep_until(at.into()).await;
            let person = &people[page % people.len()];
            let mut answers = Vec::new();
            loop {
                let asked = Instant::now();
                let status = ask_ticket(&base, person, &room).await;
                answers.push((status.clone(), asked.elapsed()));
                if status == "200" || answers.len() >= 100 {
                    break;
                }
                tokio::time::sleep(retry.pick()).await;
            }
            (answers, start.elapsed())
        }));
    }
    let mut first = std::collections::BTreeMap::<String, usize>::new();
    let mut all = std::collections::BTreeMap::<String, usize>::new();
    let (mut latencies, mut holding) = (Vec::new(), Vec::new());
    for page in pages {
        let (answers, held_at) = page.await.map_err(|e| e.to_string())?;
        *first.entry(answers[0].0.clone()).or_default() += 1;
        for (status, latency) in answers {
            *all.entry(status).or_default() += 1;
            latencies.push(latency);
        }
        holding.push(held_at);
    }
    say(format_args!(
        "storm: {} pages of {} people ask within {min}-{max} ms; first answers {first:?}",
        holding.len(),
        people.len()
    ));
    say(format_args!(
        "every answer ({} requests): {all:?}; latency {}",
        latencies.len(),
        spread_ms(&mut latencies)
    ));
    say(format_args!(
        "every page holds a ticket, counted from the window's opening: {}",
        spread_ms(&mut holding)
    ));
    Ok(())
}

/// `p50 …, p99 …, max …` of `times`, in milliseconds.
fn spread_ms(times: &mut [Duration]) -> String {
    times.sort();
    let at = |fraction: f64| {
        let i = ((times.len() as f64 * fraction).ceil() as usize).clamp(1, times.len());
        times[i - 1].as_secs_f64() * 1000.0
    };
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        at(0.5),
        at(0.99),
        at(1.0)
    )
}

/// One line of the report, printed as soon as it is known.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn browser(source: Option<IpAddr>) -> Result<Client, String> {
    Client::builder()
        .cookie_store(true)
        .redirect(redirect::Policy::none())
        .local_address(source)
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

async fn sign_up(base: &str, email: &str, source: Option<IpAddr>) -> Result<Person, String> {
    let http = browser(source)?;
    let form = [("email", email), ("password", PASSWORD)];
    post_form(&http, base, "/register", &form, "sign-up").await?;
    let home = page(http.get(format!("{base}/"))).await?;
    let csrf = csrf_token(&home).ok_or("no CSRF token on the home page")?;
    Ok(Person { http, csrf })
}

/// Posts a form as a browser does (with `Origin`); anything but the redirect that follows a
/// success is an error naming `what`.
async fn post_form(
    http: &Client,
    base: &str,
    path: &str,
    form: &[(&str, &str)],
    what: &str,
) -> Result<(), String> {
    let sent = http
        .post(format!("{base}{path}"))
        .header(ORIGIN, base)
        .form(form);
    let status = sent.send().await.map_err(|e| e.to_string())?.status();
    if status != StatusCode::SEE_OTHER {
        return Err(format!("{what} answered {status}"));
    }
    Ok(())
}

/// A page's HTML.
async fn page(request: reqwest::RequestBuilder) -> Result<String, String> {
    let response = request.send().await.map_err(|e| e.to_string())?;
    response.text().await.map_err(|e| e.to_string())
}

/// The session's CSRF token, from the page's `<meta name="csrf-token">` or a form's hidden field.
fn csrf_token(html: &str) -> Option<String> {
    [
        "name=\"csrf-token\" content=\"",
        "name=\"csrf_token\" value=\"",
    ]
    .iter()
    .find_map(|marker| {
        let rest = &html[html.find(marker)? + marker.len()..];
        Some(rest[..rest.find('"')?].to_owned())
    })
}

async fn create_room(base: &str, owner: &Person, title: &str) -> Result<String, String> {
    let form = [("title", title), ("csrf_token", owner.csrf.as_str())];
    post_form(&owner.http, base, "/rooms", &form, "creating the room").await?;
    let search = owner
        .http
        .get(format!("{base}/search"))
        .query(&[("q", title)]);
    let found = page(search).await?;
    let start = found
        .find("href=\"/rooms/")
        .ok_or("the new room is not found")?
        + 13;
    Ok(found[start..start + 24].to_owned())
}

/// One page's ticket request, as the chat page sends it; its status (or why none came).
async fn ask_ticket(base: &str, person: &Person, room: &str) -> String {
    let sent = person
        .http
        .post(format!("{base}/api/rooms/{room}/ticket"))
        .header(ORIGIN, base)
        .header(ACCEPT, "application/json")
        .header("X-CSRF-Token", &person.csrf)
        .send()
        .await;
    match sent {
        Ok(response) => response.status().as_u16().to_string(),
        Err(error) if error.is_timeout() => "timeout".into(),
        Err(_) => "connection failed".into(),
    }
}
