//! The availability rules, each shown on a real .ics file through the real
//! binary: DST, moved and cancelled occurrences, THISANDFUTURE, and what
//! blocks time and what does not.

use crate::common::{Agent, b, fixture, t};

#[test]
fn weekly_berlin_meeting_stays_at_ten_local_across_the_spring_change() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/berlin-dst.ics"));
    assert_eq!(
        a.busy("2026-03-01T00:00:00Z", "2026-04-30T00:00:00Z"),
        vec![
            b("2026-03-17T09:00:00Z", "2026-03-17T10:00:00Z"),
            b("2026-03-24T09:00:00Z", "2026-03-24T10:00:00Z"),
            b("2026-03-31T08:00:00Z", "2026-03-31T09:00:00Z"),
            b("2026-04-07T08:00:00Z", "2026-04-07T09:00:00Z"),
        ]
    );
}

#[test]
fn daily_berlin_event_with_duration_follows_the_autumn_change() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/berlin-dst.ics"));
    assert_eq!(
        a.busy("2026-10-20T00:00:00Z", "2026-10-31T00:00:00Z"),
        vec![
            b("2026-10-23T08:00:00Z", "2026-10-23T09:00:00Z"),
            b("2026-10-24T08:00:00Z", "2026-10-24T09:00:00Z"),
            b("2026-10-25T09:00:00Z", "2026-10-25T10:00:00Z"),
            b("2026-10-26T09:00:00Z", "2026-10-26T10:00:00Z"),
        ]
    );
}

#[test]
fn new_york_standup_moves_an_hour_in_utc_when_clocks_change() {
    // The owner's zone does not matter for zoned times: Tokyo here.
    let a = Agent::init("Asia/Tokyo");
    a.import(&fixture("scenarios/newyork-dst.ics"));
    assert_eq!(
        a.busy("2026-10-29T00:00:00Z", "2026-11-05T00:00:00Z"),
        vec![
            b("2026-10-30T13:00:00Z", "2026-10-30T13:30:00Z"),
            b("2026-10-31T13:00:00Z", "2026-10-31T13:30:00Z"),
            b("2026-11-01T14:00:00Z", "2026-11-01T14:30:00Z"),
            b("2026-11-02T14:00:00Z", "2026-11-02T14:30:00Z"),
        ]
    );
    assert_eq!(
        a.busy("2026-03-01T00:00:00Z", "2026-03-31T00:00:00Z"),
        vec![
            b("2026-03-06T14:00:00Z", "2026-03-06T15:00:00Z"),
            b("2026-03-09T13:00:00Z", "2026-03-09T14:00:00Z"),
        ]
    );
}

#[test]
fn weekly_series_with_one_occurrence_moved_and_one_cancelled() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/weekly-moved-and-cancelled.ics"));
    assert_eq!(
        a.busy("2026-01-01T00:00:00Z", "2026-02-28T00:00:00Z"),
        vec![
            b("2026-01-05T13:00:00Z", "2026-01-05T14:00:00Z"),
            // 12 Jan moved to Tuesday 13 Jan 16:00–17:30 Berlin.
            b("2026-01-13T15:00:00Z", "2026-01-13T16:30:00Z"),
            // 19 Jan excluded by EXDATE, 26 Jan cancelled by an override.
            b("2026-02-02T13:00:00Z", "2026-02-02T14:00:00Z"),
        ]
    );
    // A window holding only the moved instance's original slot shows nothing.
    assert_eq!(
        a.busy("2026-01-12T12:00:00Z", "2026-01-12T16:00:00Z"),
        vec![]
    );
    // A window holding only where it moved to finds it.
    assert_eq!(
        a.busy("2026-01-13T00:00:00Z", "2026-01-14T00:00:00Z"),
        vec![b("2026-01-13T15:00:00Z", "2026-01-13T16:30:00Z")]
    );
}

#[test]
fn thisandfuture_override_reshapes_the_rest_of_the_series_and_a_cancelled_one_ends_it() {
    let a = Agent::init("UTC");
    a.import(&fixture("scenarios/thisandfuture.ics"));
    assert_eq!(
        a.busy("2026-02-01T00:00:00Z", "2026-02-10T00:00:00Z"),
        vec![
            b("2026-02-02T09:00:00Z", "2026-02-02T10:00:00Z"),
            b("2026-02-02T15:00:00Z", "2026-02-02T16:00:00Z"),
            b("2026-02-03T09:00:00Z", "2026-02-03T10:00:00Z"),
            b("2026-02-03T15:00:00Z", "2026-02-03T16:00:00Z"),
            b("2026-02-04T11:00:00Z", "2026-02-04T11:30:00Z"),
            b("2026-02-05T11:00:00Z", "2026-02-05T11:30:00Z"),
            b("2026-02-06T11:00:00Z", "2026-02-06T11:30:00Z"),
            b("2026-02-07T11:00:00Z", "2026-02-07T11:30:00Z"),
        ]
    );
}

#[test]
fn all_day_and_floating_times_are_read_in_the_owners_zone() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/blocking-rules.ics"));
    assert_eq!(
        a.busy("2026-05-01T00:00:00Z", "2026-05-06T00:00:00Z"),
        vec![
            // DATE without an end: one local day.
            b("2026-05-03T22:00:00Z", "2026-05-04T22:00:00Z"),
            // Floating 10:00–11:00 is Berlin time. The transparent event does not block.
            b("2026-05-05T08:00:00Z", "2026-05-05T09:00:00Z"),
        ]
    );
    // The same file for an owner in New York: the all-day event moves with the owner.
    let ny = Agent::init("America/New_York");
    ny.import(&fixture("scenarios/blocking-rules.ics"));
    assert_eq!(
        ny.busy("2026-05-04T00:00:00Z", "2026-05-05T12:00:00Z")[0],
        b("2026-05-04T04:00:00Z", "2026-05-05T04:00:00Z")
    );
}

#[test]
fn busy_wins_over_tentative_and_zero_length_cancelled_and_tasks_never_block() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/blocking-rules.ics"));
    assert_eq!(
        a.busy("2026-05-06T00:00:00Z", "2026-05-08T00:00:00Z"),
        vec![
            t("2026-05-06T08:00:00Z", "2026-05-06T09:00:00Z"),
            b("2026-05-06T09:00:00Z", "2026-05-06T10:00:00Z"),
            t("2026-05-06T10:00:00Z", "2026-05-06T11:00:00Z"),
        ]
    );
}

#[test]
fn multi_day_all_day_event_spans_whole_local_days_and_is_clipped_to_the_window() {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture("scenarios/blocking-rules.ics"));
    assert_eq!(
        a.busy("2026-05-10T00:00:00Z", "2026-05-20T00:00:00Z"),
        vec![b("2026-05-10T22:00:00Z", "2026-05-12T22:00:00Z")]
    );
    assert_eq!(
        a.busy("2026-05-11T12:00:00Z", "2026-05-11T13:00:00Z"),
        vec![b("2026-05-11T12:00:00Z", "2026-05-11T13:00:00Z")]
    );
}

// Cases where RFC 5545 leaves room for readings (tests/fixtures/ics-rfc-only/
// README.md). Each test states attache's choice and why.

fn rfc_only(name: &str) -> Agent {
    let a = Agent::init("Europe/Berlin");
    a.import(&fixture(&format!("ics-rfc-only/{name}")));
    a
}

/// RFC 5545 §3.8.5.3: "The DTSTART property value always counts as the first
/// occurrence" — so COUNT=4 gives DTSTART and three rule instances (Python's
/// dateutil gives DTSTART plus four).
#[test]
fn dtstart_off_the_rule_counts_as_the_first_of_count() {
    let a = rfc_only("dtstart-not-matching-rrule-with-count.ics");
    let starts: Vec<String> = a
        .busy("2026-11-01T00:00:00Z", "2027-03-01T00:00:00Z")
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(
        starts,
        [
            "2026-11-30T09:00:00Z", // DTSTART, a Monday
            "2026-12-02T09:00:00Z",
            "2026-12-03T14:00:00Z", // DTSTART of the monthly series, the 3rd
            "2026-12-09T09:00:00Z",
            "2026-12-10T14:00:00Z",
            "2026-12-16T09:00:00Z",
            "2027-01-10T14:00:00Z",
        ]
    );
}

/// An instance both excluded (EXDATE) and overridden: RFC 5545 §3.8.5.1 says
/// EXDATE removes the instance from the set; the override has nothing left
/// to modify, so nothing of that instance blocks time.
#[test]
fn exdate_wins_over_an_override_of_the_same_instance() {
    let a = rfc_only("exdate-and-override-same-instance.ics");
    assert_eq!(
        a.busy("2026-12-07T00:00:00Z", "2026-12-11T00:00:00Z"),
        vec![]
    );
}

/// EXDATE of the other value type (RFC 5545 §3.8.5.1 asks for DTSTART's):
/// a DATE removes every instance on that local date; a DATE-TIME at local
/// midnight removes the all-day instance of that date.
#[test]
fn exdate_of_the_other_value_type_removes_by_local_date() {
    let a = rfc_only("exdate-date-on-datetime-series.ics");
    let busy = a.busy("2026-12-03T00:00:00Z", "2026-12-06T00:00:00Z");
    assert_eq!(
        busy,
        vec![b("2026-12-04T09:00:00Z", "2026-12-04T10:00:00Z")]
    );
    let week2 = a.busy("2026-12-07T12:00:00Z", "2026-12-08T23:30:00Z");
    assert_eq!(
        week2,
        vec![b("2026-12-08T09:00:00Z", "2026-12-08T10:00:00Z")],
        "the 8 Dec all-day instance is excluded"
    );
}

/// RFC 5545 §3.3.10 evaluates rules on local time: HOURLY steps the wall
/// clock. Through the repeated hour the second 02:30 is not generated;
/// through the skipped hour 02:30 becomes 03:30 (§3.3.5) and coincides
/// with the next instance.
#[test]
fn hourly_rules_step_the_wall_clock_across_dst() {
    let a = rfc_only("hourly-across-dst-change.ics");
    let autumn: Vec<String> = a
        .busy("2026-10-24T00:00:00Z", "2026-10-26T00:00:00Z")
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(
        autumn,
        [
            "2026-10-24T22:30:00Z",
            "2026-10-24T23:30:00Z",
            "2026-10-25T00:30:00Z",
            "2026-10-25T02:30:00Z",
            "2026-10-25T03:30:00Z"
        ]
    );
    let spring: Vec<String> = a
        .busy("2027-03-27T00:00:00Z", "2027-03-29T00:00:00Z")
        .into_iter()
        .map(|(s, _, _)| s)
        .collect();
    assert_eq!(
        spring,
        [
            "2027-03-27T23:30:00Z",
            "2027-03-28T00:30:00Z",
            "2027-03-28T01:30:00Z",
            "2027-03-28T02:30:00Z"
        ]
    );
}

/// An override whose RECURRENCE-ID is no instance of the series still
/// describes a real meeting on the owner's calendar: it blocks its time
/// (the safe reading for free/busy — hiding it would offer busy time as free).
#[test]
fn an_override_off_the_series_still_blocks_its_time() {
    let a = rfc_only("override-recurrence-id-not-in-series.ics");
    assert_eq!(
        a.busy("2026-11-24T00:00:00Z", "2026-11-27T00:00:00Z"),
        vec![b("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z")]
    );
}

/// RFC 5545 §3.4 allows a stream of several VCALENDAR objects; all are read.
#[test]
fn every_vcalendar_in_a_file_is_read() {
    let a = rfc_only("two-vcalendars-in-one-file.ics");
    assert_eq!(
        a.busy("2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z").len(),
        2
    );
}
