//! attache's integration tests: one binary (faster to build), one module per
//! feature. They run the real `attache` binary on real SQLite files and real
//! .ics fixtures.

mod common;

mod adhoc;
mod agents_freebusy;
mod approvals;
mod audit_log;
mod bench_agents;
mod bench_meetings;
mod calendar_cli;
mod differential;
mod faults;
mod handoffs;
mod hostile;
mod interop;
mod load;
mod log_secrecy;
mod meet_cli;
mod meeting_changes;
mod meetings;
mod meetings_e2e;
mod offline_peer;
mod policy_cli;
mod policy_gate;
mod protocol_doc;
mod recovery;
mod scenarios;
mod xmpp_agent;
