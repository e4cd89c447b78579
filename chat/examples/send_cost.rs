//! What one small send costs the kernel, by system call: `send(2)` of one buffer (what the writer
//! does for a room's event alone), `sendmsg(2)` of the same buffer as one slice, and `sendmsg(2)`
//! and `writev(2)` of it as two slices (a head and a payload), on a loopback TCP connection whose
//! other end this thread drains every 64 sends, so no other thread is woken. Prints the system
//! time per call, the four alternately, ROUNDS times; the drain's reads are in every figure alike
//! (chat/README.md, "The writer" and "Against the ceiling").
//!
//!   cargo run --release -p chat --example send_cost [sends per round, default 1000000]

use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use socket2::SockRef;

/// A fanout event's size: a 150-byte message and its head (a 16-bit length).
const HEAD: [u8; 4] = [0x81, 126, 0, 150];
const PAYLOAD: [u8; 150] = [b'x'; 150];
const DRAIN_EVERY: usize = 64;
const ROUNDS: usize = 5;

#[derive(Clone, Copy, Debug)]
enum Call {
    Send,
    SendmsgOneSlice,
    SendmsgTwoSlices,
    WritevTwoSlices,
}

fn main() -> std::io::Result<()> {
    let sends: usize = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |n| n.parse())
        .expect("sends per round: a number");
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut sender = TcpStream::connect(listener.local_addr()?)?;
    let (mut receiver, _) = listener.accept()?;
    sender.set_nodelay(true)?;
    let mut frame = HEAD.to_vec();
    frame.extend_from_slice(&PAYLOAD);
    for round in 1..=ROUNDS {
        for call in [
            Call::Send,
            Call::SendmsgOneSlice,
            Call::SendmsgTwoSlices,
            Call::WritevTwoSlices,
        ] {
            let before = system_time()?;
            for sent in 1..=sends {
                let written = match call {
                    Call::Send => SockRef::from(&sender).send(&frame)?,
                    Call::SendmsgOneSlice => {
                        SockRef::from(&sender).send_vectored(&[IoSlice::new(&frame)])?
                    }
                    Call::SendmsgTwoSlices => SockRef::from(&sender)
                        .send_vectored(&[IoSlice::new(&HEAD), IoSlice::new(&PAYLOAD)])?,
                    Call::WritevTwoSlices => {
                        sender.write_vectored(&[IoSlice::new(&HEAD), IoSlice::new(&PAYLOAD)])?
                    }
                };
                assert_eq!(
                    written,
                    frame.len(),
                    "a loopback socket takes a small frame whole"
                );
                if sent % DRAIN_EVERY == 0 {
                    drain(&mut receiver, DRAIN_EVERY * frame.len())?;
                }
            }
            drain(&mut receiver, sends % DRAIN_EVERY * frame.len())?;
            let per_call = (system_time()? - before).as_secs_f64() * 1e6 / sends as f64;
            writeln!(
                std::io::stdout().lock(),
                "round {round}: {call:?}: {per_call:.2} µs of system time per call"
            )?;
        }
    }
    Ok(())
}

/// Reads exactly what was sent since the last drain.
fn drain(receiver: &mut TcpStream, bytes: usize) -> std::io::Result<()> {
    let mut buffer = [0; DRAIN_EVERY * (HEAD.len() + PAYLOAD.len())];
    receiver.read_exact(&mut buffer[..bytes])
}

/// This thread's system time so far (/proc/thread-self/stat, in clock ticks of 10 ms).
fn system_time() -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    // The fields after the command's closing parenthesis; stime is the 15th field of the line.
    let after_command = &stat[stat.rfind(')').expect("a stat line names its command") + 2..];
    let ticks: u64 = after_command
        .split(' ')
        .nth(12)
        .and_then(|field| field.parse().ok())
        .expect("stime is a number");
    Ok(Duration::from_millis(ticks * 10))
}
