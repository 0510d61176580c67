//! XEP-0050 ad-hoc commands with XEP-0004 data forms, as typed values:
//! a `<command/>` IQ from a client becomes a [`CommandRequest`], and a
//! [`CommandResponse`] or [`CommandError`] becomes the answer.
//!
//! Owns the stanza shape and its bounds (how long a node, a session id or
//! a field value may be). Must not decide what a command does or who may
//! run it beyond what [`CommandList`] says: the handler turns forms into
//! work.

use jid::{BareJid, Jid};
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field, FieldType, Option_};
use xmpp_parsers::minidom::Element;
use xmpp_parsers::minidom::rxml::xml_ncname;
use xmpp_parsers::ns;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType, StanzaError};

use super::events::Outgoing;

/// The XEP-0050 namespace, advertised in disco#info when commands are offered.
pub const COMMANDS_NS: &str = "http://jabber.org/protocol/commands";

/// Longest node name and session id read from a client.
const MAX_TOKEN: usize = 64;
/// Bounds on a submitted form: fields, values per field, characters per value.
const MAX_FIELDS: usize = 32;
const MAX_VALUES: usize = 64;
const MAX_VALUE_CHARS: usize = 2_000;

/// The commands one person may list and run; everyone else sees none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandList {
    /// The only bare JID the commands are listed to and executed for.
    pub owner: BareJid,
    pub commands: Vec<CommandNode>,
}

/// One command as disco#items lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandNode {
    pub node: String,
    /// The human-readable name clients show.
    pub name: String,
}

impl CommandList {
    /// Whether `node` names one of the commands.
    pub fn has(&self, node: &str) -> bool {
        self.commands.iter().any(|c| c.node == node)
    }
}

/// What the client asks of a command (XEP-0050 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandAction {
    /// Start the command, or (with a session) submit the form.
    Execute,
    Next,
    Prev,
    Complete,
    Cancel,
}

/// A `<command/>` IQ set from the owner.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRequest {
    pub node: String,
    /// `None` on the first request; then the id the agent handed out.
    pub session: Option<String>,
    pub action: CommandAction,
    /// The submitted form's values, if a form came with the request.
    pub submitted: Option<Submission>,
}

/// The values of a submitted form (`type='submit'`), field by field, in
/// the order sent; `FORM_TYPE` is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submission {
    pub fields: Vec<(String, Vec<String>)>,
}

impl Submission {
    /// The values of field `var`; empty when absent.
    pub fn values(&self, var: &str) -> &[String] {
        self.fields
            .iter()
            .find(|(v, _)| v == var)
            .map_or(&[], |(_, values)| values.as_slice())
    }
}

/// How a form field is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    TextSingle,
    TextMulti,
    ListSingle,
    ListMulti,
    /// Read-only text (e.g. the pending list).
    Fixed,
}

/// One field of a form the agent presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub var: String,
    pub kind: FieldKind,
    pub label: String,
    pub required: bool,
    /// `(label, value)` choices of a list field.
    pub options: Vec<(String, String)>,
    /// Default or shown values.
    pub values: Vec<String>,
}

/// A form the agent presents (`type='form'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub title: String,
    pub instructions: Option<String>,
    pub fields: Vec<FormField>,
}

/// The kind of a `<note/>` (XEP-0050 §3.4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    Info,
    Warn,
    Error,
}

/// Where the command stands after this answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandStatus {
    /// Waiting for this form to come back submitted.
    Executing(Form),
    Completed,
    Canceled,
}

/// The agent's answer to a [`CommandRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResponse {
    pub node: String,
    pub session: String,
    pub status: CommandStatus,
    pub note: Option<(NoteKind, String)>,
}

/// Why a command request is refused (XEP-0050 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandError {
    /// Not the owner.
    Forbidden,
    /// No command by that node.
    UnknownNode,
    /// The session id is unknown, expired or someone else's.
    BadSession,
    /// The action is not allowed at this stage (e.g. `prev`).
    BadAction,
    /// The request is not a readable `<command/>`.
    BadPayload,
}

impl CommandError {
    fn parts(self) -> (DefinedCondition, Option<&'static str>, &'static str) {
        match self {
            CommandError::Forbidden => (
                DefinedCondition::Forbidden,
                None,
                "only the owner may run commands",
            ),
            CommandError::UnknownNode => (DefinedCondition::ItemNotFound, None, "no such command"),
            CommandError::BadSession => (
                DefinedCondition::BadRequest,
                Some("bad-sessionid"),
                "unknown or expired session; start the command again",
            ),
            CommandError::BadAction => (
                DefinedCondition::BadRequest,
                Some("bad-action"),
                "this command has a single form; submit or cancel it",
            ),
            CommandError::BadPayload => (
                DefinedCondition::BadRequest,
                Some("bad-payload"),
                "not a readable command request",
            ),
        }
    }

    /// The IQ error to send for this refusal.
    pub fn to_outgoing(self, to: Jid, id: String) -> Outgoing {
        let (condition, app, text) = self.parts();
        Outgoing::IqError {
            to,
            id,
            condition,
            text: Some(text.into()),
            app: app.map(|name| Element::builder(name, COMMANDS_NS).build()),
        }
    }

    /// The same refusal as the edge sends it by itself.
    pub(crate) fn stanza_error(self) -> StanzaError {
        let (condition, app, text) = self.parts();
        let type_ = match condition {
            DefinedCondition::Forbidden => ErrorType::Auth,
            DefinedCondition::BadRequest => ErrorType::Modify,
            _ => ErrorType::Cancel,
        };
        let mut error = StanzaError::new(type_, condition, "en", text);
        error.other = app.map(|name| Element::builder(name, COMMANDS_NS).build());
        error
    }
}

/// Reads a `<command/>` payload; `Err` says which refusal it earns.
pub(crate) fn parse_request(payload: &Element) -> Result<CommandRequest, CommandError> {
    if !payload.is("command", COMMANDS_NS) {
        return Err(CommandError::BadPayload);
    }
    let node = payload
        .attr("node")
        .filter(|n| !n.is_empty() && n.len() <= MAX_TOKEN)
        .ok_or(CommandError::BadPayload)?
        .to_string();
    let session = match payload.attr("sessionid") {
        None | Some("") => None,
        Some(s) if s.len() <= MAX_TOKEN => Some(s.to_string()),
        Some(_) => return Err(CommandError::BadSession),
    };
    let mut action = match payload.attr("action") {
        None | Some("execute") => CommandAction::Execute,
        Some("next") => CommandAction::Next,
        Some("prev") => CommandAction::Prev,
        Some("complete") => CommandAction::Complete,
        Some("cancel") => CommandAction::Cancel,
        Some(_) => return Err(CommandError::BadAction),
    };
    let mut submitted = None;
    for child in payload.children().filter(|c| c.is("x", ns::DATA_FORMS)) {
        if submitted.is_some() {
            return Err(CommandError::BadPayload);
        }
        let form = DataForm::try_from(child.clone()).map_err(|_| CommandError::BadPayload)?;
        match form.type_ {
            DataFormType::Cancel => action = CommandAction::Cancel,
            DataFormType::Submit => submitted = Some(submission(form)?),
            // A client echoing a form back unsubmitted: nothing to read.
            DataFormType::Form | DataFormType::Result_ => {}
        }
    }
    Ok(CommandRequest {
        node,
        session,
        action,
        submitted,
    })
}

fn submission(form: DataForm) -> Result<Submission, CommandError> {
    let form_type = form.form_type().is_some();
    let fields: Vec<(String, Vec<String>)> = form
        .fields
        .into_iter()
        .skip(usize::from(form_type))
        .filter_map(|f| f.var.map(|var| (var, f.values)))
        .collect();
    let too_big = fields.len() > MAX_FIELDS
        || fields.iter().any(|(var, values)| {
            var.len() > MAX_TOKEN
                || values.len() > MAX_VALUES
                || values.iter().any(|v| v.chars().count() > MAX_VALUE_CHARS)
        });
    if too_big {
        return Err(CommandError::BadPayload);
    }
    Ok(Submission { fields })
}

/// The `<command/>` payload of a response.
pub(crate) fn response_element(response: CommandResponse) -> Element {
    let status = match &response.status {
        CommandStatus::Executing(_) => "executing",
        CommandStatus::Completed => "completed",
        CommandStatus::Canceled => "canceled",
    };
    let mut command = Element::builder("command", COMMANDS_NS)
        .attr(xml_ncname!("node").to_ncname(), response.node)
        .attr(xml_ncname!("sessionid").to_ncname(), response.session)
        .attr(xml_ncname!("status").to_ncname(), status)
        .build();
    if let CommandStatus::Executing(form) = response.status {
        // One stage: the only way on is to complete (or cancel).
        let actions = Element::builder("actions", COMMANDS_NS)
            .attr(xml_ncname!("execute").to_ncname(), "complete")
            .append(Element::builder("complete", COMMANDS_NS).build())
            .build();
        command.append_child(actions);
        command.append_child(form_element(form));
    }
    if let Some((kind, text)) = response.note {
        let kind = match kind {
            NoteKind::Info => "info",
            NoteKind::Warn => "warn",
            NoteKind::Error => "error",
        };
        command.append_child(
            Element::builder("note", COMMANDS_NS)
                .attr(xml_ncname!("type").to_ncname(), kind)
                .append(text)
                .build(),
        );
    }
    command
}

fn form_element(form: Form) -> Element {
    let fields = form
        .fields
        .into_iter()
        .map(|f| {
            let mut field = Field::new(
                &f.var,
                match f.kind {
                    FieldKind::TextSingle => FieldType::TextSingle,
                    FieldKind::TextMulti => FieldType::TextMulti,
                    FieldKind::ListSingle => FieldType::ListSingle,
                    FieldKind::ListMulti => FieldType::ListMulti,
                    FieldKind::Fixed => FieldType::Fixed,
                },
            );
            field.label = Some(f.label);
            field.required = f.required;
            field.options = f
                .options
                .into_iter()
                .map(|(label, value)| Option_ {
                    label: Some(label),
                    value,
                })
                .collect();
            field.values = f.values;
            field
        })
        .collect();
    DataForm {
        type_: DataFormType::Form,
        title: Some(form.title),
        instructions: form.instructions,
        fields,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        xml.parse()
            .unwrap_or_else(|e| panic!("bad test XML {xml}: {e}"))
    }

    #[test]
    fn a_first_request_has_no_session_and_means_execute() {
        let r = parse_request(&el(&format!(
            "<command xmlns='{COMMANDS_NS}' node='free'/>"
        )));
        assert_eq!(
            r,
            Ok(CommandRequest {
                node: "free".into(),
                session: None,
                action: CommandAction::Execute,
                submitted: None,
            })
        );
    }

    #[test]
    fn a_submitted_form_is_read_without_its_form_type() {
        let xml = format!(
            "<command xmlns='{COMMANDS_NS}' node='free' sessionid='s1' action='complete'>\
             <x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:x</value></field>\
             <field var='who'><value>bob@x</value><value>carol@x</value></field>\
             <field var='when'><value>tomorrow</value></field></x></command>"
        );
        let r = parse_request(&el(&xml)).expect("a request");
        assert_eq!(r.session.as_deref(), Some("s1"));
        assert_eq!(r.action, CommandAction::Complete);
        let s = r.submitted.expect("a submission");
        assert_eq!(s.values("who"), ["bob@x", "carol@x"]);
        assert_eq!(s.values("when"), ["tomorrow"]);
        assert!(s.values("FORM_TYPE").is_empty());
        assert!(s.values("nothing").is_empty());
    }

    #[test]
    fn malformed_requests_earn_the_matching_error() {
        let cases = [
            (
                format!("<command xmlns='{COMMANDS_NS}'/>"),
                CommandError::BadPayload,
            ),
            (
                format!("<command xmlns='{COMMANDS_NS}' node='x' action='dance'/>"),
                CommandError::BadAction,
            ),
            (
                format!(
                    "<command xmlns='{COMMANDS_NS}' node='x' sessionid='{}'/>",
                    "s".repeat(65)
                ),
                CommandError::BadSession,
            ),
            (
                format!(
                    "<command xmlns='{COMMANDS_NS}' node='x'><x xmlns='jabber:x:data' type='submit'>\
                     <field var='a'><value>{}</value></field></x></command>",
                    "v".repeat(2_001)
                ),
                CommandError::BadPayload,
            ),
        ];
        for (xml, expected) in cases {
            assert_eq!(parse_request(&el(&xml)), Err(expected), "{xml}");
        }
    }

    #[test]
    fn a_cancel_form_cancels() {
        let xml = format!(
            "<command xmlns='{COMMANDS_NS}' node='meet' sessionid='s'>\
             <x xmlns='jabber:x:data' type='cancel'/></command>"
        );
        assert_eq!(
            parse_request(&el(&xml)).map(|r| r.action),
            Ok(CommandAction::Cancel)
        );
    }

    #[test]
    fn an_executing_response_carries_actions_and_a_parsable_form() {
        let el = response_element(CommandResponse {
            node: "meet".into(),
            session: "s9".into(),
            status: CommandStatus::Executing(Form {
                title: "Meet".into(),
                instructions: None,
                fields: vec![FormField {
                    var: "duration".into(),
                    kind: FieldKind::ListSingle,
                    label: "How long".into(),
                    required: true,
                    options: vec![("30 minutes".into(), "30m".into())],
                    values: vec!["30m".into()],
                }],
            }),
            note: Some((NoteKind::Error, "try again".into())),
        });
        assert_eq!(el.attr("status"), Some("executing"));
        assert_eq!(el.attr("sessionid"), Some("s9"));
        let actions = el.get_child("actions", COMMANDS_NS).expect("actions");
        assert_eq!(actions.attr("execute"), Some("complete"));
        let x = el.get_child("x", ns::DATA_FORMS).expect("a form");
        let form = DataForm::try_from(x.clone()).expect("a data form");
        assert_eq!(form.type_, DataFormType::Form);
        assert_eq!(form.fields[0].options[0].value, "30m");
        assert!(form.fields[0].required);
        let note = el.get_child("note", COMMANDS_NS).expect("a note");
        assert_eq!(
            (note.attr("type"), note.text()),
            (Some("error"), "try again".into())
        );
    }

    #[test]
    fn a_command_error_names_the_xep_0050_condition() {
        let to = Jid::new("owner@x/a").unwrap_or_else(|e| panic!("{e}"));
        let Outgoing::IqError { condition, app, .. } =
            CommandError::BadSession.to_outgoing(to, "1".into())
        else {
            panic!("not an IQ error");
        };
        assert_eq!(condition, DefinedCondition::BadRequest);
        assert!(app.is_some_and(|a| a.is("bad-sessionid", COMMANDS_NS)));
    }
}
