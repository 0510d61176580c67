//! Every XML example in docs/protocol.md is parsed and round-tripped through
//! attache's own wire code, so the document cannot drift from the program.

use attache::negotiate::messages::{
    deferred_reply_element, negotiation_element, negotiation_reply_element, parse_deferred_reply,
    parse_negotiation, parse_negotiation_reply,
};
use attache::negotiate::wire::{
    NS, PeerRequest, ProtocolError, parse_reply, parse_request, reply_element, request_element,
};
use std::collections::BTreeSet;
use xmpp_parsers::minidom::Element;

/// Every payload and application condition of §12–14: each must have at
/// least one example in the document, checked below by the real parser.
const NEGOTIATION_ELEMENTS: &[&str] = &[
    "hold",
    "held",
    "declined",
    "confirm",
    "confirmed",
    "release",
    "released",
    "cancel",
    "cancelled",
    "decline",
    "task-offer",
    "task-answer",
    "task-status",
    "task-cancel",
    "pending",
    "reply",
    "hold-expired",
    "stale-sequence",
    "unknown-meeting",
    "delegation-loop",
    "not-permitted",
    "rate-limited",
];

/// Serializes and reads back, as the wire does.
fn reparse(el: &Element) -> Element {
    let mut buf = Vec::new();
    el.write_to(&mut buf).expect("serializes");
    String::from_utf8(buf)
        .expect("utf-8")
        .parse()
        .expect("our own output parses")
}

const STANZAS: &str = "urn:ietf:params:xml:ns:xmpp-stanzas";

fn examples() -> Vec<String> {
    let doc = std::fs::read_to_string(crate::common::repo().join("docs/protocol.md"))
        .expect("docs/protocol.md");
    let mut out = Vec::new();
    let mut block: Option<String> = None;
    for line in doc.lines() {
        match (&mut block, line.trim_start()) {
            (None, "```xml") => block = Some(String::new()),
            (Some(b), "```") => {
                out.push(std::mem::take(b));
                block = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

/// Stanzas in the document are written as on the wire, inside a
/// `jabber:client` stream; parse them with that default namespace.
fn parse_stanza(xml: &str) -> Element {
    let with_ns = xml.replacen("<iq ", "<iq xmlns='jabber:client' ", 1);
    with_ns
        .parse()
        .unwrap_or_else(|e| panic!("example does not parse ({e}):\n{xml}"))
}

/// The period lists of a `<freebusy>` result (§5.2): name, FBTYPE, text.
fn period_lists(el: &Element) -> Vec<(String, Option<String>, String)> {
    el.children()
        .filter(|c| ["shown", "busy", "free"].contains(&c.name()))
        .map(|c| {
            (
                c.name().to_string(),
                c.attr("fbtype").map(str::to_string),
                c.text(),
            )
        })
        .collect()
}

/// Whether every kind of list (and FBTYPE) appears at most once.
fn no_repeated_lists(el: &Element) -> bool {
    let kinds: Vec<_> = period_lists(el)
        .into_iter()
        .map(|(name, fbtype, _)| (name, fbtype))
        .collect();
    kinds.len() == kinds.iter().collect::<BTreeSet<_>>().len()
}

#[test]
fn every_protocol_example_round_trips_through_the_real_code() {
    let examples = examples();
    assert!(
        examples.len() >= 9,
        "expected the document's examples, found {}",
        examples.len()
    );
    let mut checked = 0;
    let mut lenient_lists = 0;
    let mut seen = BTreeSet::new();
    for xml in &examples {
        let iq = parse_stanza(xml);
        let kind = iq.attr("type").expect("every example is an iq with a type");
        let Some(child) = iq.children().next() else {
            // §12.7, §13.2, §13.3: some requests are acknowledged by an empty result.
            assert_eq!(kind, "result", "only a result may be empty:\n{xml}");
            checked += 1;
            continue;
        };
        seen.insert(child.name().to_string());
        match (kind, child.name(), child.ns().as_str()) {
            ("get", "freebusy", NS) => {
                let PeerRequest::Freebusy(q) =
                    parse_request(child).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                let again = parse_request(&request_element(&q)).expect("our own request parses");
                assert_eq!(again, PeerRequest::Freebusy(q), "{xml}");
            }
            ("result", "freebusy", NS) => {
                let r = parse_reply(child).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                let written = reply_element(&r);
                assert_eq!(
                    parse_reply(&written).expect("our own reply parses"),
                    r,
                    "{xml}"
                );
                // §5.2: an example written as a responder writes (one list per
                // kind and FBTYPE, no whitespace) is exactly what attache writes;
                // the others show what a requester must also accept.
                if period_lists(child)
                    .iter()
                    .all(|(_, _, text)| !text.contains(char::is_whitespace))
                    && no_repeated_lists(child)
                {
                    assert_eq!(period_lists(&written), period_lists(child), "{xml}");
                } else {
                    lenient_lists += 1;
                }
            }
            ("set", "reply", NS) => {
                let r = parse_deferred_reply(child).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                assert_eq!(
                    r.request_id.as_str(),
                    child.attr("request-id").unwrap_or_default()
                );
                if let Some(inner) = child.children().next() {
                    seen.insert(inner.name().to_string());
                    for app in inner.children().filter(|c| c.ns() == NS) {
                        seen.insert(app.name().to_string());
                    }
                }
                let again = parse_deferred_reply(&reparse(&deferred_reply_element(&r)))
                    .unwrap_or_else(|e| panic!("our own <reply> does not parse ({e}):\n{xml}"));
                assert_eq!(again, r, "{xml}");
            }
            ("set", name, NS) => {
                let r = parse_negotiation(child).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                assert_eq!(r.name(), name, "{xml}");
                let again = parse_negotiation(&reparse(&negotiation_element(&r)))
                    .unwrap_or_else(|e| panic!("our own <{name}> does not parse ({e}):\n{xml}"));
                assert_eq!(again, r, "{xml}");
            }
            ("result", name, NS) => {
                let r = parse_negotiation_reply(child).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                let written = negotiation_reply_element(&r);
                assert_eq!(written.name(), name, "{xml}");
                let again = parse_negotiation_reply(&reparse(&written))
                    .unwrap_or_else(|e| panic!("our own <{name}> does not parse ({e}):\n{xml}"));
                assert_eq!(again, r, "{xml}");
            }
            ("error", "error", _) => {
                let condition = child
                    .children()
                    .find(|c| c.ns() == STANZAS && c.name() != "text")
                    .expect("a defined condition")
                    .name()
                    .to_string();
                let text = child
                    .children()
                    .find(|c| c.is("text", STANZAS))
                    .map(|c| c.text())
                    .unwrap_or_default();
                let app = child
                    .children()
                    .find(|c| c.ns() == NS)
                    .expect("an application condition");
                seen.insert(app.name().to_string());
                let ours = ProtocolError::from_parts(&condition, &text, Some(app))
                    .unwrap_or_else(|| panic!("undocumented condition {}:\n{xml}", app.name()));
                let (etype, defined, _, app_el) = ours.parts();
                assert_eq!(child.attr("type"), Some(etype), "{xml}");
                assert_eq!(condition, defined, "{xml}");
                assert_eq!(
                    app_el.map(|e| e.name().to_string()),
                    Some(app.name().to_string())
                );
            }
            ("result", "query", "http://jabber.org/protocol/disco#info") => {
                assert!(
                    child.children().any(|f| f.attr("var") == Some(NS)),
                    "disco must advertise {NS}"
                );
            }
            other => panic!("example of an unknown kind {other:?}:\n{xml}"),
        }
        checked += 1;
    }
    assert_eq!(checked, examples.len());
    assert!(
        lenient_lists >= 1,
        "§5.2 should show a reply with whitespace or repeated lists"
    );
    let missing: Vec<_> = NEGOTIATION_ELEMENTS
        .iter()
        .filter(|n| !seen.contains(**n))
        .collect();
    assert!(
        missing.is_empty(),
        "no example in docs/protocol.md for {missing:?}"
    );
}

#[test]
fn hostile_payloads_get_the_documented_errors() {
    let cases = [
        (format!("<freebusy xmlns='{NS}'/>"), "request-id"),
        (
            format!("<freebusy xmlns='{NS}' request-id='a b'/>"),
            "request-id",
        ),
        (
            format!(
                "<freebusy xmlns='{NS}' request-id='x' start='2026-01-12T00:00:00+01:00' end='2026-01-13T00:00:00Z'/>"
            ),
            "UTC time",
        ),
        (
            format!(
                "<freebusy xmlns='{NS}' request-id='x' start='2026-01-13T00:00:00Z' end='2026-01-12T00:00:00Z'/>"
            ),
            "after",
        ),
        (
            format!(
                "<freebusy xmlns='{NS}' request-id='x' start='2026-01-01T00:00:00Z' end='2028-01-01T00:00:00Z'/>"
            ),
            "366-day",
        ),
        (
            format!("<freebusy xmlns='{NS}' request-id='x' level='everything'/>"),
            "level",
        ),
        (
            format!("<freebusy xmlns='{NS}' request-id='x' duration='1h'/>"),
            "duration",
        ),
        (
            format!(
                "<freebusy xmlns='{NS}' request-id='x'>{}</freebusy>",
                "<slot start='2026-01-13T10:00:00Z'/>".repeat(51)
            ),
            "more than 50",
        ),
        (
            format!(
                "<freebusy xmlns='{NS}' request-id='x'><slot><a><b><c/></b></a></slot></freebusy>"
            ),
            "nests",
        ),
        (
            format!("<steal-calendar xmlns='{NS}' request-id='x'/>"),
            "not part of version 1",
        ),
    ];
    for (xml, want) in cases {
        let el: Element = xml.parse().expect("well-formed");
        let err = parse_request(&el).expect_err(&xml);
        assert!(err.to_string().contains(want), "{xml}: {err}");
    }
}

#[test]
fn hostile_negotiation_payloads_get_the_documented_errors() {
    const HOLD: &str = "request-id='h' meeting='m@x' sequence='0' start='2026-01-13T10:00:00Z' end='2026-01-13T10:30:00Z' expires='2026-01-12T09:05:00Z'";
    let attendees: String = (0..51)
        .map(|i| format!("<attendee jid='p{i}@example.org'/>"))
        .collect();
    let chain: String = (0..11)
        .map(|i| format!("<agent jid='a{i}@example.org'/>"))
        .collect();
    let cases = [
        (
            format!("<hold xmlns='{NS}' {HOLD}>{attendees}</hold>"),
            ("not-acceptable", "more than 50"),
        ),
        (
            format!(
                "<task-offer xmlns='{NS}' request-id='t' task='t'><summary>s</summary><chain>{chain}</chain></task-offer>"
            ),
            ("not-acceptable", "longer than 10"),
        ),
        (
            format!(
                "<hold xmlns='{NS}' {HOLD}><summary>{}</summary></hold>",
                "x".repeat(201)
            ),
            ("not-acceptable", "200-character"),
        ),
        (
            format!(
                "<task-offer xmlns='{NS}' request-id='t' task='t'><summary>s</summary><note>{}</note></task-offer>",
                "x".repeat(1001)
            ),
            ("not-acceptable", "1000-character"),
        ),
        (
            format!("<hold xmlns='{NS}' {HOLD}><summary>a<b/></summary></hold>"),
            ("bad-request", "plain text"),
        ),
        (
            format!(
                "<confirm xmlns='{NS}' request-id='c' meeting='{}' sequence='0'/>",
                "u".repeat(256)
            ),
            ("bad-request", "uid"),
        ),
        (
            format!("<cancel xmlns='{NS}' request-id='c' meeting='m' sequence='-1'/>"),
            ("bad-request", "sequence"),
        ),
        (
            format!("<task-status xmlns='{NS}' request-id='s' task='t' partstat='DELEGATED'/>"),
            ("bad-request", "delegated-to"),
        ),
        (
            format!("<hold xmlns='{NS}' {HOLD}><priority/></hold>"),
            ("feature-not-implemented", "not part of"),
        ),
        (
            format!("<book-everything xmlns='{NS}' request-id='x'/>"),
            ("feature-not-implemented", "not a version 1"),
        ),
    ];
    for (xml, (defined, want)) in cases {
        let el: Element = xml.parse().expect("well-formed");
        let err = parse_negotiation(&el).expect_err(&xml);
        assert!(err.to_string().contains(want), "{xml}: {err}");
        let (_, condition, _, _) = ProtocolError::from(err).parts();
        assert_eq!(condition, defined, "{xml}");
    }
}
