//! `debug/io-stats` (translators.md §5.2): per-fop call, error and latency counts measured
//! from the `now` of wind and unwind, bytes read and written with power-of-two size buckets,
//! and the text dump in io-stats's layout.

use core::fmt;

use super::args::{Body, Request};
use super::engine::{CallError, Ctx, Unwound};
use super::fop::{Fop, MAXVALUE};
use super::frame::FrameRef;

/// One fop's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FopStats {
    /// Calls unwound.
    pub calls: u64,
    /// Of which failed.
    pub errors: u64,
    /// Sum of latencies (the `now` units, nanoseconds by convention).
    pub total: u64,
    /// Least latency.
    pub min: u64,
    /// Greatest latency.
    pub max: u64,
}

/// Size buckets: bucket `i` counts sizes in `[2^i, 2^(i+1))`.
pub const BUCKETS: usize = 32;

/// An io-stats translator's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoStats {
    /// Per fop, by value.
    pub fops: [FopStats; MAXVALUE as usize],
    /// Bytes read (readv `op_ret`s).
    pub bytes_read: u64,
    /// Bytes written (writev `op_ret`s).
    pub bytes_written: u64,
    /// Read sizes.
    pub read_sizes: [u64; BUCKETS],
    /// Write sizes.
    pub write_sizes: [u64; BUCKETS],
    /// When counting began.
    pub start: u64,
}

impl Default for IoStats {
    fn default() -> Self {
        IoStats::new(0)
    }
}

fn bucket(n: u64) -> usize {
    (63 - n.max(1).leading_zeros() as usize).min(BUCKETS - 1)
}

impl IoStats {
    /// Counting from `start`.
    pub fn new(start: u64) -> IoStats {
        IoStats {
            fops: [FopStats::default(); MAXVALUE as usize],
            bytes_read: 0,
            bytes_written: 0,
            read_sizes: [0; BUCKETS],
            write_sizes: [0; BUCKETS],
            start,
        }
    }

    /// One fop's counters.
    pub fn get(&self, fop: Fop) -> FopStats {
        self.fops
            .get(usize::from(fop.value()))
            .copied()
            .unwrap_or_default()
    }

    /// Winds to the first child with its own callback (a frame per layer, to time it);
    /// release and releasedir are cbks, not fops (§3.1), and pass uncounted.
    pub fn call<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        req: Request,
    ) -> Result<(), CallError> {
        if req.fop().is_cbk() {
            return cx.tail(frame, req);
        }
        let child = cx.first_child().ok_or(CallError::NoChild)?;
        cx.wind(frame, child, req)?;
        Ok(())
    }

    /// Counts the reply and unwinds it.
    pub fn unwound<L: Default>(
        &mut self,
        cx: &mut Ctx<'_, '_, L>,
        frame: FrameRef,
        from: Unwound,
    ) -> Result<(), CallError> {
        let latency = cx.now().saturating_sub(cx.begin(frame)?);
        self.record(from.fop, latency, &from.reply);
        cx.unwind(frame, from.reply)
    }

    fn record(&mut self, fop: Fop, latency: u64, r: &super::args::Reply) {
        if let Some(s) = self.fops.get_mut(usize::from(fop.value())) {
            s.min = if s.calls == 0 {
                latency
            } else {
                s.min.min(latency)
            };
            s.max = s.max.max(latency);
            s.total = s.total.saturating_add(latency);
            s.calls += 1;
            s.errors += u64::from(r.op_ret < 0);
        }
        if r.op_ret >= 0 {
            let n = r.op_ret as u64;
            match (fop, &r.body) {
                (Fop::Read, Body::Read { .. }) => {
                    self.bytes_read += n;
                    self.read_sizes[bucket(n)] += 1;
                }
                (Fop::Write, _) => {
                    self.bytes_written += n;
                    self.write_sizes[bucket(n)] += 1;
                }
                _ => {}
            }
        }
    }

    /// The text dump ("=== Cumulative stats ===" as io-stats writes it for
    /// `ios-dump-format text`), latencies in microseconds from nanosecond `now`s.
    pub fn dump(&self, now: u64) -> Dump<'_> {
        Dump { s: self, now }
    }
}

/// [`IoStats::dump`]'s text.
pub struct Dump<'s> {
    s: &'s IoStats,
    now: u64,
}

struct SizeLabel(usize);

impl fmt::Display for SizeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (n, unit) = match self.0 {
            i @ 0..=9 => (1u64 << i, "B"),
            i @ 10..=19 => (1 << (i - 10), "KB"),
            i @ 20..=29 => (1 << (i - 20), "MB"),
            i => (1 << (i - 30), "GB"),
        };
        let mut s = heapless::String::<8>::new();
        let _ = fmt::write(&mut s, format_args!("{n}{unit}+"));
        f.pad(&s)
    }
}

impl fmt::Display for Dump<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.s;
        writeln!(f, "=== Cumulative stats ===")?;
        writeln!(
            f,
            "      Duration : {} secs",
            self.now.saturating_sub(s.start) / 1_000_000_000
        )?;
        writeln!(f, "     BytesRead : {}", s.bytes_read)?;
        writeln!(f, "  BytesWritten : {}", s.bytes_written)?;
        writeln!(f)?;
        for i in 0..BUCKETS {
            let (r, w) = (s.read_sizes[i], s.write_sizes[i]);
            if r == 0 && w == 0 {
                continue;
            }
            writeln!(f, "Block Size   :{:>18}", SizeLabel(i))?;
            writeln!(f, "Read Count   :{r:>18}")?;
            writeln!(f, "Write Count  :{w:>18}")?;
            writeln!(f)?;
        }
        writeln!(
            f,
            "Fop           Call Count    Avg-Latency    Min-Latency    Max-Latency"
        )?;
        writeln!(
            f,
            "---           ----------    -----------    -----------    -----------"
        )?;
        for fop in Fop::ALL {
            let st = s.get(fop);
            if st.calls == 0 {
                continue;
            }
            let us = |ns: u64| ns as f64 / 1000.0;
            let avg = us(st.total) / st.calls as f64;
            writeln!(
                f,
                "{:<13} {:>10} {:>11.2} us {:>11.2} us {:>11.2} us",
                fop.name(),
                st.calls,
                avg,
                us(st.min),
                us(st.max)
            )?;
        }
        writeln!(
            f,
            "------ ----- ----- ----- ----- ----- ----- -----  ----- ----- ----- -----"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xlator::args::{Reply, Span};
    use crate::xlator::iatt::Iatt;
    use std::string::ToString;

    #[test]
    fn counts_latency_and_sizes_and_dumps_as_io_stats() {
        let mut s = IoStats::new(0);
        let read = Reply::ok(
            4096,
            Body::Read {
                data: Span::EMPTY,
                stbuf: Iatt::default(),
            },
        );
        s.record(Fop::Read, 2_000, &read);
        s.record(Fop::Read, 4_000, &read);
        s.record(Fop::Lookup, 17_000, &Reply::error(2));
        assert_eq!(s.get(Fop::Read).min, 2_000);
        assert_eq!(s.get(Fop::Lookup).errors, 1);
        assert_eq!(bucket(4096), 12);
        assert_eq!(bucket(0), 0);
        let text = s.dump(3_000_000_000).to_string();
        assert_eq!(
            text,
            "=== Cumulative stats ===\n      Duration : 3 secs\n     BytesRead : 8192\n  BytesWritten : 0\n\n\
             Block Size   :              4KB+\nRead Count   :                 2\nWrite Count  :                 0\n\n\
             Fop           Call Count    Avg-Latency    Min-Latency    Max-Latency\n\
             ---           ----------    -----------    -----------    -----------\n\
             READ                   2        3.00 us        2.00 us        4.00 us\n\
             LOOKUP                 1       17.00 us       17.00 us       17.00 us\n\
             ------ ----- ----- ----- ----- ----- ----- -----  ----- ----- ----- -----\n"
        );
    }
}
