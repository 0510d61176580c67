//! A generated calendar for benchmarks: 10,000 VEVENTs of which 500 are
//! recurring series that started years ago, in several zones, with the
//! shapes real calendars have (all-day, tentative, transparent, cancelled,
//! EXDATEs, moved occurrences). Deterministic: the same seed gives the same file.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

/// A small deterministic generator (64-bit LCG, high bits).
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const ZONES: [&str; 3] = ["Europe/Berlin", "America/New_York", "UTC"];

fn stamp(t: NaiveDateTime) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

fn dt(prop: &str, zone: &str, t: NaiveDateTime) -> String {
    if zone == "UTC" {
        format!("{prop}:{}Z", stamp(t))
    } else {
        format!("{prop};TZID={zone}:{}", stamp(t))
    }
}

/// Returns the .ics text: `singles` one-off events spread over three years
/// before and one year after `anchor`, and `series` recurring ones.
pub fn generate(anchor: DateTime<Utc>, singles: usize, series: usize, seed: u64) -> String {
    let mut r = Lcg::new(seed);
    let mut out =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//attache//bench//EN\r\n");
    let base = anchor
        .naive_utc()
        .date()
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default();
    let mut push = |lines: Vec<String>| {
        out.push_str("BEGIN:VEVENT\r\n");
        for l in lines {
            out.push_str(&l);
            out.push_str("\r\n");
        }
        out.push_str("END:VEVENT\r\n");
    };
    for i in 0..singles {
        let day = r.below(4 * 365) as i64 - 3 * 365;
        let start =
            base + Duration::days(day) + Duration::minutes(7 * 60 + 30 * r.below(24) as i64);
        let zone = ZONES[r.below(3) as usize];
        let mut lines = vec![
            format!("UID:single-{i}@bench"),
            "DTSTAMP:20260101T000000Z".into(),
        ];
        if r.below(10) == 0 {
            let d = start.date();
            lines.push(format!("DTSTART;VALUE=DATE:{}", d.format("%Y%m%d")));
            lines.push(format!(
                "DTEND;VALUE=DATE:{}",
                (d + Duration::days(1 + r.below(3) as i64)).format("%Y%m%d")
            ));
        } else {
            lines.push(dt("DTSTART", zone, start));
            lines.push(dt(
                "DTEND",
                zone,
                start + Duration::minutes(30 * (1 + r.below(4) as i64)),
            ));
        }
        match r.below(20) {
            0 => lines.push("STATUS:TENTATIVE".into()),
            1 => lines.push("TRANSP:TRANSPARENT".into()),
            2 => lines.push("STATUS:CANCELLED".into()),
            3 => lines.push("CLASS:PRIVATE".into()),
            _ => {}
        }
        lines.push(format!("SUMMARY:Meeting {i}"));
        push(lines);
    }
    for i in 0..series {
        let years_ago = 1 + r.below(8) as i64;
        let start = base - Duration::days(365 * years_ago + r.below(300) as i64)
            + Duration::hours(8 + r.below(9) as i64);
        let zone = ZONES[r.below(3) as usize];
        let rule = match r.below(10) {
            0 | 1 => "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR".to_string(),
            2..=5 => "FREQ=WEEKLY;BYDAY=MO,WE".to_string(),
            6 | 7 => "FREQ=MONTHLY;BYDAY=2TU".to_string(),
            8 => "FREQ=YEARLY".to_string(),
            _ => "FREQ=MONTHLY;BYMONTHDAY=-1".to_string(),
        };
        let rule = match r.below(4) {
            0 => format!(
                "{rule};UNTIL={}Z",
                stamp(base + Duration::days(r.below(400) as i64))
            ),
            _ => rule,
        };
        let uid = format!("series-{i}@bench");
        let mut lines = vec![
            format!("UID:{uid}"),
            "DTSTAMP:20260101T000000Z".into(),
            dt("DTSTART", zone, start),
            dt(
                "DTEND",
                zone,
                start + Duration::minutes(30 * (1 + r.below(3) as i64)),
            ),
            format!("RRULE:{rule}"),
            format!("SUMMARY:Series {i}"),
        ];
        if r.below(3) == 0 {
            lines.push(dt(
                "EXDATE",
                zone,
                start + Duration::days(7 * r.below(50) as i64),
            ));
        }
        push(lines);
        if r.below(5) == 0 {
            // Move one recent occurrence (by a week's multiple from the start it is a real slot for
            // weekly rules; for others it may match nothing, which calendars also contain).
            let weeks = (base - start).num_weeks();
            let original = start + Duration::weeks(weeks);
            push(vec![
                format!("UID:{uid}"),
                "DTSTAMP:20260101T000000Z".into(),
                dt("RECURRENCE-ID", zone, original),
                dt("DTSTART", zone, original + Duration::hours(2)),
                dt("DTEND", zone, original + Duration::hours(3)),
                format!("SUMMARY:Series {i} (moved)"),
            ]);
        }
    }
    out.push_str("END:VCALENDAR\r\n");
    out
}
