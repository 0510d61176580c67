//! The help texts: every command's grammar, what it does, and examples.
//!
//! Owns the table of commands the parser suggests from and `help` prints.
//! Must not parse anything itself; the parser and this table are kept in
//! step by the tests in `parse.rs` (every example here parses).

/// One command as `help` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandHelp {
    /// The canonical name, as `help <name>` takes it.
    pub name: &'static str,
    /// Other words that start this command.
    pub synonyms: &'static [&'static str],
    pub grammar: &'static str,
    pub summary: &'static str,
    /// The first one is the one `help` shows.
    pub examples: &'static [&'static str],
}

/// Every command, in the order `help` lists them.
pub const COMMANDS: &[CommandHelp] = &[
    CommandHelp {
        name: "help",
        synonyms: &["?", "commands"],
        grammar: "help [command]",
        summary: "all commands, or one in detail",
        examples: &["help free", "help"],
    },
    CommandHelp {
        name: "agenda",
        synonyms: &["cal", "calendar", "schedule"],
        grammar: "agenda [<when>]",
        summary: "your own events (default today)",
        examples: &["agenda tomorrow", "agenda next week"],
    },
    CommandHelp {
        name: "free",
        synonyms: &["freebusy", "avail"],
        grammar: "free <who> [<when>] [for <dur>]",
        summary: "ask a contact's agent when they are free; with a time, about that slot",
        examples: &["free bob next week for 1h", "free bob tue 10:00 for 1h"],
    },
    CommandHelp {
        name: "meet",
        synonyms: &["book", "meeting"],
        grammar: "meet <who> for <dur> [<when>] [about <title>] [optional <who>] [quorum N]",
        summary: "find a time with everyone and book it",
        examples: &[
            "meet bob, carol for 45m next week about design review",
            "meet team quorum 3",
        ],
    },
    CommandHelp {
        name: "meetings",
        synonyms: &[],
        grammar: "meetings",
        summary: "meetings you booked or are negotiating, with their ids",
        examples: &["meetings"],
    },
    CommandHelp {
        name: "cancel",
        synonyms: &[],
        grammar: "cancel <id>",
        summary: "cancel a meeting for everyone",
        examples: &["cancel m3"],
    },
    CommandHelp {
        name: "move",
        synonyms: &["reschedule"],
        grammar: "move <id> to <when>",
        summary: "find a new time for a meeting",
        examples: &["move m3 to thu", "move m3 to next week"],
    },
    CommandHelp {
        name: "decline",
        synonyms: &[],
        grammar: "decline <id>",
        summary: "decline a meeting someone else booked",
        examples: &["decline m4"],
    },
    CommandHelp {
        name: "tasks",
        synonyms: &["todo", "todos"],
        grammar: "tasks",
        summary: "your open tasks, with their ids",
        examples: &["tasks"],
    },
    CommandHelp {
        name: "task add",
        synonyms: &["task"],
        grammar: "task add <text> [due <when>]",
        summary: "add a task",
        examples: &[
            "task add buy milk due tomorrow",
            "task add send slides due fri 17:00",
        ],
    },
    CommandHelp {
        name: "done",
        synonyms: &["complete"],
        grammar: "done <id>",
        summary: "mark a task done",
        examples: &["done 3"],
    },
    CommandHelp {
        name: "progress",
        synonyms: &[],
        grammar: "progress <id> <percent>",
        summary: "note how far a task is; a task handed to you reports it back",
        examples: &["progress 3 50%"],
    },
    CommandHelp {
        name: "handoff",
        synonyms: &["delegate"],
        grammar: "handoff <id> to <who> [note <text>]",
        summary: "offer a task to a contact; their status comes back",
        examples: &["handoff 3 to dana note slides are in the shared folder"],
    },
    CommandHelp {
        name: "takeback",
        synonyms: &[],
        grammar: "takeback <id>",
        summary: "withdraw a task you handed off",
        examples: &["takeback 3"],
    },
    CommandHelp {
        name: "pending",
        synonyms: &["requests"],
        grammar: "pending",
        summary: "requests a policy sent to you for approval",
        examples: &["pending"],
    },
    CommandHelp {
        name: "approve",
        synonyms: &[],
        grammar: "approve <id> [due <when>]",
        summary: "allow a pending request; with due, answer a task offer with the date you would take it by",
        examples: &["approve 4", "approve 5 due fri 17:00"],
    },
    CommandHelp {
        name: "deny",
        synonyms: &["reject"],
        grammar: "deny <id>",
        summary: "refuse a pending request",
        examples: &["deny 4"],
    },
    CommandHelp {
        name: "contacts",
        synonyms: &[],
        grammar: "contacts",
        summary: "your address book",
        examples: &["contacts"],
    },
    CommandHelp {
        name: "contact add",
        synonyms: &["contact"],
        grammar: "contact add <jid> as <name> [agent <agent-jid>] [in <group>]",
        summary: "add someone to your address book",
        examples: &["contact add bob@example.org as Bob agent bob.agent@example.org in team"],
    },
    CommandHelp {
        name: "log",
        synonyms: &[],
        grammar: "log [<who>]",
        summary: "what was disclosed to whom, when, under which rule",
        examples: &["log bob", "log"],
    },
    CommandHelp {
        name: "why",
        synonyms: &[],
        grammar: "why <who> <action>",
        summary: "which rule decides for them (actions: freebusy, meet, handoff, task-status, contact-card)",
        examples: &["why bob freebusy", "why carol meet"],
    },
];

/// How the grammar's placeholders are written; `help when` etc. show these.
pub const PLACEHOLDERS: &[CommandHelp] = &[
    CommandHelp {
        name: "when",
        synonyms: &["<when>", "day", "date", "time"],
        grammar: "<when> := today | tomorrow | mon..sun | this week | next week | YYYY-MM-DD | YYYY-MM-DD..YYYY-MM-DD  [HH:MM]",
        summary: "a weekday is the next one, today included; this week = today to Sunday; next week = Monday to Sunday",
        examples: &["agenda next week", "free bob tue 10:00 for 1h"],
    },
    CommandHelp {
        name: "dur",
        synonyms: &["<dur>", "duration"],
        grammar: "<dur> := 30m | 1h | 1h30m | 90m",
        summary: "hours and minutes, at most 24h",
        examples: &["meet bob for 1h30m"],
    },
    CommandHelp {
        name: "who",
        synonyms: &["<who>"],
        grammar: "<who> := a contact's name or JID, or a group; several separated by commas",
        summary: "names are matched without regard to case",
        examples: &["free bob, carol@example.org tomorrow"],
    },
];

/// Finds a command or placeholder by its name or a synonym (`help task`).
pub(crate) fn lookup(topic: &str) -> Option<&'static CommandHelp> {
    let t = topic.trim();
    COMMANDS.iter().chain(PLACEHOLDERS).find(|c| {
        c.name.eq_ignore_ascii_case(t) || c.synonyms.iter().any(|s| s.eq_ignore_ascii_case(t))
    })
}

/// Every command with one example each, in one chat message.
pub(super) fn overview() -> String {
    let mut out = String::from("Commands (one per message):\n");
    for c in COMMANDS {
        if let Some(example) = c.examples.first() {
            out.push_str(&format!("{example} — {}\n", c.summary));
        }
    }
    out.push_str("Send \"help <command>\" for details, e.g. help free.");
    out
}

/// One command's (or placeholder's) grammar and examples; `name` as
/// `Command::Help` carries it.
pub(super) fn topic(name: &str) -> String {
    match lookup(name) {
        Some(c) => {
            let mut out = format!("{}\n{}.", c.grammar, capitalized(c.summary));
            let examples = c.examples.iter().take(2).copied().collect::<Vec<_>>();
            if !examples.is_empty() {
                out.push_str(&format!(
                    "\nExample{}: {}",
                    if examples.len() == 1 { "" } else { "s" },
                    examples.join(" · ")
                ));
            }
            out
        }
        None => overview(),
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command_with_an_example_in_one_message() {
        let text = overview();
        for c in COMMANDS {
            assert!(text.contains(c.examples[0]), "{} missing", c.name);
        }
        // Comfortably one chat message.
        assert!(text.len() < 2_000, "{} bytes", text.len());
        assert!(text.lines().count() <= COMMANDS.len() + 2);
    }

    #[test]
    fn help_for_one_command_gives_its_grammar_and_examples() {
        let text = topic("free");
        assert!(text.starts_with("free <who> [<when>] [for <dur>]"));
        assert!(text.contains("free bob tue 10:00 for 1h"));
        assert!(topic("task").starts_with("task add <text> [due <when>]"));
        assert!(topic("when").contains("next week"));
    }
}
