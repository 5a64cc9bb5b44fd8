//! Slow and greedy clients: request bodies read against a deadline that grows with what
//! has arrived, a cap on the bodies one address may send at once before signing in, and
//! a tally of badly signed webhook deliveries per address.
//! actix-web's `client_request_timeout` covers only the request head; a body trickled a
//! byte at a time would otherwise hold a connection (and a file descriptor) for ever.

use crate::config::LimitsConfig;
use actix_web::web::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How fast a body must arrive: within `grace`, plus one second per `min_rate` bytes
/// received so far, and never beyond `cap`.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub grace: Duration,
    pub min_rate: u64,
    pub cap: Option<Duration>,
}

impl Pace {
    /// Forms and uploads: the deadline grows with the size.
    pub fn body(l: &LimitsConfig) -> Pace {
        Pace {
            grace: Duration::from_secs(l.body_grace_secs),
            min_rate: l.body_min_bytes_per_sec.max(1),
            cap: None,
        }
    }

    /// Webhook deliveries (at most 4 MB): the same, and all of it within the cap.
    pub fn webhook(l: &LimitsConfig) -> Pace {
        Pace {
            cap: Some(Duration::from_secs(l.webhook_body_secs)),
            ..Pace::body(l)
        }
    }

    /// When the next chunk must have arrived, `received` bytes into a body begun at `started`.
    pub fn deadline(&self, started: Instant, received: usize) -> Instant {
        #[expect(
            clippy::cast_precision_loss,
            reason = "a deadline in seconds: a rounding of bytes does not matter"
        )]
        let earned = Duration::from_secs_f64(received as f64 / self.min_rate as f64);
        let allowed = self.grace.saturating_add(earned);
        started + self.cap.map_or(allowed, |c| allowed.min(c))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// More than the limit.
    TooLarge,
    /// Not in by the deadline.
    TooSlow,
    /// The connection broke or the encoding was wrong.
    Broken,
}

/// The next chunk of `stream`, or `TooSlow` when it does not come by the pace's deadline.
pub async fn next_chunk<S, E>(
    stream: &mut S,
    pace: &Pace,
    started: Instant,
    received: usize,
) -> Result<Option<Bytes>, BodyError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let deadline = tokio::time::Instant::from_std(pace.deadline(started, received));
    match tokio::time::timeout_at(deadline, stream.next()).await {
        Err(_) => Err(BodyError::TooSlow),
        Ok(None) => Ok(None),
        Ok(Some(Ok(b))) => Ok(Some(b)),
        Ok(Some(Err(_))) => Err(BodyError::Broken),
    }
}

/// Reads a whole body of at most `limit` bytes at `pace`.
pub async fn read_all<S, E>(stream: &mut S, limit: usize, pace: &Pace) -> Result<Bytes, BodyError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let started = Instant::now();
    let mut buf = BytesMut::new();
    while let Some(chunk) = next_chunk(stream, pace, started, buf.len()).await? {
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Bodies being received per address from clients not signed in.
#[derive(Clone)]
pub struct BodySlots {
    max: u32,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One body's place; given back when dropped.
pub struct BodySlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl BodySlots {
    pub fn new(max: u32) -> BodySlots {
        BodySlots {
            max: max.max(1),
            open: Arc::default(),
        }
    }

    /// A place for one more body from `ip`, or `None` when it already sends `max`.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<BodySlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(BodySlot {
            ip,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for BodySlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock() {
            if let Some(n) = open.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

/// Badly signed deliveries per address in the current minute.
pub struct BadSenders {
    max_per_minute: u32,
    seen: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl BadSenders {
    pub fn new(max_per_minute: u32) -> BadSenders {
        BadSenders {
            max_per_minute: max_per_minute.max(1),
            seen: Mutex::default(),
        }
    }

    /// Counts one bad signature from `ip`.
    pub fn note(&self, ip: IpAddr) {
        let now = Instant::now();
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.len() > 10_000 {
            // Bounded memory under a spray of addresses: forget the finished minutes.
            seen.retain(|_, (since, _)| now.duration_since(*since) < MINUTE);
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= MINUTE {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// True while `ip` has sent `max_per_minute` bad signatures within the minute.
    pub fn flooding(&self, ip: IpAddr) -> bool {
        let Ok(seen) = self.seen.lock() else {
            return false;
        };
        seen.get(&ip)
            .is_some_and(|(since, n)| since.elapsed() < MINUTE && *n >= self.max_per_minute)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_grows_with_what_arrived_up_to_the_cap() {
        let l = LimitsConfig {
            body_grace_secs: 10,
            body_min_bytes_per_sec: 1000,
            webhook_body_secs: 30,
            ..LimitsConfig::default()
        };
        let t0 = Instant::now();
        assert_eq!(Pace::body(&l).deadline(t0, 0), t0 + Duration::from_secs(10));
        assert_eq!(Pace::body(&l).deadline(t0, 5000), t0 + Duration::from_secs(15));
        assert_eq!(Pace::webhook(&l).deadline(t0, 4_000_000), t0 + Duration::from_secs(30));
    }

    #[test]
    fn slots_are_per_address_and_given_back() {
        let slots = BodySlots::new(2);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let one = slots.try_acquire(a).unwrap();
        let _two = slots.try_acquire(a).unwrap();
        assert!(slots.try_acquire(a).is_none());
        assert!(slots.try_acquire(b).is_some(), "another address has its own");
        drop(one);
        assert!(slots.try_acquire(a).is_some());
    }

    #[test]
    fn bad_senders_flood_after_the_limit() {
        let bad = BadSenders::new(3);
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        bad.note(ip);
        bad.note(ip);
        assert!(!bad.flooding(ip));
        bad.note(ip);
        assert!(bad.flooding(ip));
        assert!(!bad.flooding("192.0.2.10".parse().unwrap()));
    }
}
