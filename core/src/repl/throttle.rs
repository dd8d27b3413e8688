//! Resync rate limiting and progress (replication.md §4.6 `resync-rate`, §6.4).
//!
//! [`Throttle`] is a token bucket on the caller's clock (`now` in milliseconds): credit grows
//! at `rate` bytes per second up to a burst of 100 ms of traffic (at least one request), and a
//! request is sent only when the credit covers it. Over any interval of `t` ms the bytes
//! requested therefore stay within `burst + rate · t / 1000`.
//!
//! [`Progress`] is what a `status` display shows: totals, rate since the start (paused time
//! excluded) and the time left at that rate.

/// DRBD's default `resync-rate`: 250 KiB/s.
pub const DEFAULT_RATE: u64 = 250 << 10;

/// A token bucket for resync requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Throttle {
    rate: u64,
    burst: u64,
    /// Credit in byte-milliseconds (bytes · 1000), so refills need no division.
    credit: u64,
    last: Option<u64>,
}

impl Throttle {
    /// `rate` bytes per second (0 = unlimited); the burst is 100 ms worth, at least
    /// `min_burst` bytes (one request).
    pub fn new(rate: u64, min_burst: u64) -> Self {
        let burst = (rate / 10).max(min_burst);
        Throttle {
            rate,
            burst,
            credit: burst.saturating_mul(1000),
            last: None,
        }
    }

    /// The configured rate (bytes per second, 0 = unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// The largest burst, in bytes.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    fn refill(&mut self, now: u64) {
        let dt = self.last.map_or(0, |l| now.saturating_sub(l));
        self.last = Some(self.last.map_or(now, |l| l.max(now)));
        self.credit = self
            .credit
            .saturating_add(self.rate.saturating_mul(dt))
            .min(self.burst.saturating_mul(1000));
    }

    /// Takes `bytes` of credit at `now` if there is enough.
    pub fn take(&mut self, now: u64, bytes: u64) -> bool {
        if self.rate == 0 {
            return true;
        }
        self.refill(now);
        let need = bytes.min(self.burst).saturating_mul(1000);
        if self.credit < need {
            return false;
        }
        self.credit -= need;
        true
    }

    /// When `bytes` of credit will be there (now, if already).
    pub fn ready_at(&self, now: u64, bytes: u64) -> u64 {
        if self.rate == 0 {
            return now;
        }
        let mut t = *self;
        t.refill(now);
        let need = bytes.min(self.burst).saturating_mul(1000);
        now.saturating_add(need.saturating_sub(t.credit).div_ceil(self.rate))
    }
}

/// Resync progress for a status display.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Bytes to resync in all: done plus remaining.
    pub total_bytes: u64,
    /// Bytes resynced so far.
    pub done_bytes: u64,
    /// Bytes still dirty.
    pub remaining_bytes: u64,
    /// Bytes the peer could not deliver or we could not write (they stay dirty).
    pub failed_bytes: u64,
    /// Average rate while running, bytes per second.
    pub rate: u64,
    /// Milliseconds left at that rate (`None` before any progress).
    pub eta_ms: Option<u64>,
    /// Paused by the user.
    pub paused: bool,
}

impl Progress {
    /// Done as a percentage in tenths (0…1000), as `drbdadm status` shows one decimal.
    pub fn permille(&self) -> u64 {
        self.done_bytes
            .saturating_mul(1000)
            .checked_div(self.total_bytes)
            .unwrap_or(1000)
    }
}

/// Running time with pauses taken out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Stopwatch {
    elapsed: u64,
    since: Option<u64>,
}

impl Stopwatch {
    pub(crate) fn start(&mut self, now: u64) {
        if self.since.is_none() {
            self.since = Some(now);
        }
    }
    pub(crate) fn stop(&mut self, now: u64) {
        if let Some(s) = self.since.take() {
            self.elapsed = self.elapsed.saturating_add(now.saturating_sub(s));
        }
    }
    pub(crate) fn elapsed(&self, now: u64) -> u64 {
        self.elapsed
            .saturating_add(self.since.map_or(0, |s| now.saturating_sub(s)))
    }
}

/// Builds [`Progress`] from bit counts (4 KiB each).
pub(crate) fn progress(
    done_bits: u64,
    remaining_bits: u64,
    failed_bits: u64,
    elapsed_ms: u64,
    paused: bool,
) -> Progress {
    let done = done_bits << super::bitmap::BLOCK_SHIFT;
    let remaining = remaining_bits << super::bitmap::BLOCK_SHIFT;
    let rate = done
        .saturating_mul(1000)
        .checked_div(elapsed_ms)
        .unwrap_or(0);
    Progress {
        total_bytes: done + remaining,
        done_bytes: done,
        remaining_bytes: remaining,
        failed_bytes: failed_bits << super::bitmap::BLOCK_SHIFT,
        rate,
        eta_ms: (rate > 0).then(|| remaining.saturating_mul(1000) / rate),
        paused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_holds_the_rate() {
        // 100 KiB/s, burst 10 KiB: two 4 KiB requests at once, then one per 40.96 ms.
        let mut t = Throttle::new(100 << 10, 4096);
        assert_eq!(t.burst(), 10240);
        assert!(t.take(0, 4096) && t.take(0, 4096));
        assert!(!t.take(0, 4096));
        assert_eq!(t.ready_at(0, 4096), 20);
        assert!(!t.take(19, 4096));
        assert!(t.take(20, 4096));
        let mut sent = 3 * 4096u64;
        for ms in 21..=10_000 {
            while t.take(ms, 4096) {
                sent += 4096;
            }
        }
        assert!(sent <= 10240 + 100 * 1024 * 10, "{sent}");
        assert!(sent >= 100 * 1024 * 10 - 4096, "{sent}");
        let mut free = Throttle::new(0, 4096);
        assert!((0..1000).all(|_| free.take(0, 1 << 20)));
        // A clock going backwards neither panics nor mints credit.
        let mut back = Throttle::new(1000, 1000);
        assert!(back.take(500, 1000));
        assert!(!back.take(100, 1));
    }

    #[test]
    fn progress_numbers() {
        let p = progress(250, 750, 0, 2000, false);
        assert_eq!((p.total_bytes, p.done_bytes), (4096 * 1000, 4096 * 250));
        assert_eq!(p.rate, 4096 * 125);
        assert_eq!(p.eta_ms, Some(6000));
        assert_eq!(p.permille(), 250);
        assert_eq!(progress(0, 0, 0, 0, false).permille(), 1000);
        let mut w = Stopwatch::default();
        w.start(100);
        w.stop(300);
        w.start(1000);
        assert_eq!(w.elapsed(1100), 300);
    }
}
