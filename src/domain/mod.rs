//! Plain domain types: contacts, calendar events, meetings, tasks and time ranges.
//!
//! Owns the vocabulary every other layer speaks. Must not touch I/O: no
//! files, no database, no network, no clock (callers pass `now`).

pub mod contact;
pub mod event;
pub mod meeting;
pub mod task;
pub mod time;

pub use contact::Contact;
pub use event::{
    BusyInterval, BusyStatus, Classification, EventComponent, EventEnd, EventSeries, EventStatus,
    IcalDuration, Instance, InstanceDetails, RDate, RecurrenceId, Transparency,
};
pub use meeting::{Attendee, Hold, Meeting, MeetingRole, MeetingStatus, PartStat, TaskPartStat};
pub use task::{Task, TaskStatus};
pub use time::{IcalTime, TimeRange};
