//! Log lines in glusterfs's layout, for `keelctl mount`: `[DATE TIME.USEC +0000] L [SOURCE]
//! 0-COMPONENT: MESSAGE`, with `L` the level's letter (E, W, I, D, T). A translator's line
//! (target `xlator::TYPE`, field `xlator`) reads as glusterfs writes it: `[trace] 0-tr: 4:
//! gfid=... path=/f1` where glusterfs has `[trace.c:1894:trace_lookup] 0-tr: 4: gfid=...
//! path=/f1`, so the same tools read both logs. Other fields follow the message as
//! `key=value`.

use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter.
#[derive(Clone, Copy, Debug, Default)]
pub struct GlusterLog;

#[derive(Default)]
struct Fields {
    message: String,
    xlator: Option<String>,
    rest: String,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_string(),
            "xlator" => self.xlator = Some(value.to_string()),
            n => {
                let _ = write!(self.rest, " {n}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "xlator" => self.xlator = Some(format!("{value:?}")),
            n => {
                let _ = write!(self.rest, " {n}={value:?}");
            }
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.UUUUUU` in UTC.
pub fn timestamp(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_micros()
    )
}

fn letter(l: &Level) -> char {
    match *l {
        Level::ERROR => 'E',
        Level::WARN => 'W',
        Level::INFO => 'I',
        Level::DEBUG => 'D',
        Level::TRACE => 'T',
    }
}

impl<S, N> FormatEvent<S, N> for GlusterLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut f = Fields::default();
        event.record(&mut f);
        let source = meta.target().rsplit("::").next().unwrap_or("keelson");
        let component = f.xlator.as_deref().unwrap_or(source);
        writeln!(
            w,
            "[{} +0000] {} [{source}] 0-{component}: {}{}",
            timestamp(SystemTime::now()),
            letter(meta.level()),
            f.message,
            f.rest
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let t = UNIX_EPOCH + Duration::new(1_796_196_541, 506_034_999);
        assert_eq!(timestamp(t), "2026-12-02 07:29:01.506034");
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01 00:00:00.000000");
    }
}
