//! `attache contacts`: the address book.

use clap::{Args, Subcommand};

use super::{Context, print_json};
use crate::domain::Contact;
use crate::domain::contact::parse_bare_jid;
use crate::error::CliError;

/// Manage contacts: the people your agent may talk to, their agents, their groups.
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    Add(AddArgs),
    List(ListArgs),
    Remove(RemoveArgs),
}

/// Add a contact: their own JID, the name you call them by, and their agent's JID if they run one.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The person's own bare JID, e.g. bob@example.org
    #[arg(value_name = "PERSON_JID")]
    jid: String,
    /// The name you use for them in chat commands (case-insensitive)
    #[arg(long)]
    name: String,
    /// Their attache agent's bare JID
    #[arg(long, value_name = "AGENT_JID")]
    agent: Option<String>,
    /// A group they belong to (repeat for several), e.g. --group team
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
}

/// List contacts.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON instead of text
    #[arg(long)]
    json: bool,
}

/// Remove a contact, by name or JID.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    #[arg(value_name = "NAME|JID")]
    key: String,
}

pub(crate) async fn run(ctx: &Context, cmd: ContactsCommand) -> Result<(), CliError> {
    match cmd {
        ContactsCommand::Add(a) => {
            let name = a.name.trim().to_string();
            if name.is_empty() || name.contains(',') || name.contains('@') {
                return Err(CliError::Usage(format!(
                    "--name '{}' won't work in chat commands: use a non-empty name without ',' or '@'",
                    a.name
                )));
            }
            let mut groups = Vec::new();
            for g in a.groups {
                let g = g.trim().to_lowercase();
                if g.is_empty()
                    || !g
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(CliError::Usage(format!(
                        "--group '{g}': use letters, digits, '-' or '_' (e.g. team, book-club)"
                    )));
                }
                groups.push(g);
            }
            let contact = Contact {
                name,
                jid: parse_bare_jid(&a.jid).map_err(CliError::Usage)?,
                agent_jid: a
                    .agent
                    .as_deref()
                    .map(parse_bare_jid)
                    .transpose()
                    .map_err(CliError::Usage)?,
                groups,
            };
            ctx.store.add_contact(&contact, ctx.now).await?;
            say!("Added {}.", describe(&contact));
            Ok(())
        }
        ContactsCommand::List(a) => {
            let contacts = ctx.store.contacts().await?;
            if a.json {
                return print_json(&contacts);
            }
            if contacts.is_empty() {
                say!("No contacts yet: attache contacts add bob@example.org --name Bob");
            }
            for c in &contacts {
                say!("{}", describe(c));
            }
            Ok(())
        }
        ContactsCommand::Remove(a) => {
            let c = ctx.store.remove_contact(&a.key).await?;
            say!("Removed {}.", describe(&c));
            Ok(())
        }
    }
}

fn describe(c: &Contact) -> String {
    let mut s = format!("{} <{}>", c.name, c.jid);
    if let Some(agent) = &c.agent_jid {
        s.push_str(&format!(" agent {agent}"));
    }
    if !c.groups.is_empty() {
        s.push_str(&format!(" in {}", c.groups.join(", ")));
    }
    s
}
