//! Talk to your agent as its owner from a script: log in as the owner, send
//! each message, print the agent's replies. Used by `scripts/demo.sh`; handy
//! for trying an agent without an XMPP client.
//!
//! ```sh
//! OWNER_PASSWORD=… cargo run --example owner_chat -- \
//!     --server 127.0.0.1:5222 --jid alice@localhost --agent alice.agent@localhost \
//!     "free bob tomorrow" "agenda"
//! ```

use std::time::Duration;

use attache::xmpp::{
    Account, BareJid, Incoming, Outgoing, Secret, Session, SessionOptions, parse_server,
};
use clap::Parser;

/// Send messages to an attache agent as its owner and print the replies.
#[derive(Parser)]
struct Args {
    /// host:port of the XMPP server (loopback only: no TLS)
    #[arg(long)]
    server: String,
    /// The owner's JID
    #[arg(long)]
    jid: String,
    /// The agent's JID
    #[arg(long)]
    agent: String,
    /// Seconds to wait for each answer
    #[arg(long, default_value_t = 20)]
    wait: u64,
    /// The messages, one after the other
    messages: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("owner_chat: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let jid = BareJid::new(&args.jid).map_err(|e| format!("--jid: {e}"))?;
    let agent = BareJid::new(&args.agent).map_err(|e| format!("--agent: {e}"))?;
    let password = std::env::var("OWNER_PASSWORD").map_err(|_| "set OWNER_PASSWORD".to_string())?;
    let account = Account {
        jid: jid.clone(),
        owner: jid,
        server: parse_server(&args.server)?,
        allow_plaintext: true,
        resource: jid::ResourcePart::new("owner-chat")
            .map_err(|e| e.to_string())?
            .into_owned(),
        password: Secret::new(password),
    };
    let mut session = Session::connect(account, SessionOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let outbox = session.outbox();
    for text in &args.messages {
        println!("you → agent:  {text}");
        outbox
            .send(Outgoing::Chat {
                to: agent.clone().into(),
                body: text.clone(),
                thread: None,
            })
            .await
            .map_err(|e| e.to_string())?;
        // Print what the agent says until an answer that is not an interim note.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(args.wait);
        loop {
            let Ok(event) = tokio::time::timeout_at(deadline, session.next()).await else {
                println!("(no answer within {} s)", args.wait);
                break;
            };
            match event {
                Some(Incoming::Message { from, body, .. }) if from.to_bare() == agent => {
                    for (i, line) in body.lines().enumerate() {
                        println!(
                            "{}{line}",
                            if i == 0 {
                                "agent → you:  "
                            } else {
                                "              "
                            }
                        );
                    }
                    // Interim notes: an offline peer, a negotiation under way.
                    let interim = body.contains("I'll ask as soon as it is back")
                        || body.starts_with("Looking for a time");
                    if !interim {
                        break;
                    }
                }
                Some(_) => {}
                None => return Err("the session ended".into()),
            }
        }
        println!();
    }
    session.close().await.map_err(|e| e.to_string())
}
