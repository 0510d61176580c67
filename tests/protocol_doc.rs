//! Every XML example in docs/protocol.md is parsed and round-tripped through
//! attache's own wire code, so the document cannot drift from the program.

use attache::negotiate::wire::{
    NS, PeerRequest, ProtocolError, parse_reply, parse_request, reply_element, request_element,
};
use xmpp_parsers::minidom::Element;

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

#[test]
fn every_protocol_example_round_trips_through_the_real_code() {
    let examples = examples();
    assert!(
        examples.len() >= 9,
        "expected the document's examples, found {}",
        examples.len()
    );
    let mut checked = 0;
    for xml in &examples {
        let iq = parse_stanza(xml);
        let kind = iq.attr("type").expect("every example is an iq with a type");
        let Some(child) = iq.children().next() else {
            panic!("example without payload:\n{xml}")
        };
        match (kind, child.name(), child.ns().as_str()) {
            ("get", "freebusy", NS) => {
                let PeerRequest::Freebusy(q) =
                    parse_request(child).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                let again = parse_request(&request_element(&q)).expect("our own request parses");
                assert_eq!(again, PeerRequest::Freebusy(q), "{xml}");
            }
            ("result", "freebusy", NS) => {
                let r = parse_reply(child).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                assert_eq!(
                    parse_reply(&reply_element(&r)).expect("our own reply parses"),
                    r,
                    "{xml}"
                );
            }
            ("result", "pending", NS) => {
                assert!(
                    child.attr("request-id").is_some() && child.attr("expires").is_some(),
                    "{xml}"
                );
            }
            ("set", "reply", NS) => {
                let inner = child
                    .children()
                    .next()
                    .expect("a reply wraps a <freebusy/>");
                let r = parse_reply(inner).unwrap_or_else(|e| panic!("{e}:\n{xml}"));
                assert_eq!(
                    r.request_id.as_str(),
                    child.attr("request-id").unwrap_or_default()
                );
                assert_eq!(parse_reply(&reply_element(&r)).expect("parses"), r);
            }
            ("error", "error", _) => {
                let condition = child
                    .children()
                    .find(|c| c.ns() == STANZAS && c.name() != "text")
                    .expect("a defined condition")
                    .name()
                    .to_string();
                let app = child
                    .children()
                    .find(|c| c.ns() == NS)
                    .expect("an application condition");
                let ours = match app.name() {
                    "not-permitted" => ProtocolError::NotPermitted,
                    "rate-limited" => ProtocolError::RateLimited {
                        retry_after: chrono::Duration::seconds(
                            app.attr("retry-after")
                                .and_then(|s| s.parse().ok())
                                .expect("retry-after"),
                        ),
                    },
                    other => panic!("undocumented condition {other}"),
                };
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
            "not part of version 0",
        ),
    ];
    for (xml, want) in cases {
        let el: Element = xml.parse().expect("well-formed");
        let err = parse_request(&el).expect_err(&xml);
        assert!(err.to_string().contains(want), "{xml}: {err}");
    }
}
