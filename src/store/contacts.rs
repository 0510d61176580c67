//! The address book: people, their agents, their groups.

use chrono::{DateTime, Utc};

use super::{Store, now_text};
use crate::domain::Contact;
use crate::error::StoreError;

impl Store {
    /// Adds a contact. Names, person JIDs and agent JIDs are each unique
    /// (case-insensitively); a clash names the contact that holds it.
    pub async fn add_contact(
        &self,
        contact: &Contact,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        for (what, value) in [
            ("name", Some(contact.name.as_str())),
            ("JID", Some(contact.jid.as_str())),
            ("agent JID", contact.agent_jid.as_deref()),
        ] {
            let Some(value) = value else { continue };
            let clash: Option<(String,)> = sqlx::query_as(
                "SELECT name FROM contacts WHERE name = ?1 OR jid = ?1 OR agent_jid = ?1",
            )
            .bind(value.to_owned())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some((holder,)) = clash {
                return Err(StoreError::Conflict(format!(
                    "the {what} '{value}' is already used by contact '{holder}': remove it first or choose another"
                )));
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO contacts (name, jid, agent_jid, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(contact.name.clone())
        .bind(contact.jid.clone())
        .bind(contact.agent_jid.clone())
        .bind(now_text(now))
        .fetch_one(&mut *tx)
        .await?;
        for group in &contact.groups {
            sqlx::query(
                "INSERT OR IGNORE INTO contact_groups (contact_id, group_name) VALUES (?, ?)",
            )
            .bind(id)
            .bind(group.clone())
            .execute(&mut *tx)
            .await?;
        }
        super::bump_version(&mut tx, super::CONTACTS_VERSION).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every contact, sorted by name.
    pub async fn contacts(&self) -> Result<Vec<Contact>, StoreError> {
        let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, name, jid, agent_jid FROM contacts ORDER BY name COLLATE NOCASE",
        )
        .fetch_all(&self.pool)
        .await?;
        let groups: Vec<(i64, String)> =
            sqlx::query_as("SELECT contact_id, group_name FROM contact_groups ORDER BY group_name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(id, name, jid, agent_jid)| Contact {
                name,
                jid,
                agent_jid,
                groups: groups
                    .iter()
                    .filter(|(cid, _)| *cid == id)
                    .map(|(_, g)| g.clone())
                    .collect(),
            })
            .collect())
    }

    /// The contact whose name, person JID or agent JID is `key` (case-insensitive).
    pub async fn find_contact(&self, key: &str) -> Result<Option<Contact>, StoreError> {
        let key = key.trim();
        Ok(self
            .contacts()
            .await?
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(key) || c.is_known_as(key)))
    }

    /// Removes the contact named `key` (name or either JID) and returns it.
    pub async fn remove_contact(&self, key: &str) -> Result<Contact, StoreError> {
        let contact = self.find_contact(key).await?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no contact named '{key}': `attache contacts list` shows who is there"
            ))
        })?;
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM contacts WHERE jid = ?")
            .bind(contact.jid.clone())
            .execute(&mut *tx)
            .await?;
        super::bump_version(&mut tx, super::CONTACTS_VERSION).await?;
        tx.commit().await?;
        Ok(contact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bob() -> Contact {
        Contact {
            name: "Bob".into(),
            jid: "bob@example.org".into(),
            agent_jid: Some("bob.agent@example.org".into()),
            groups: vec!["team".into()],
        }
    }

    #[tokio::test]
    async fn a_contact_is_found_by_name_person_or_agent_jid_in_any_case() -> Result<(), StoreError>
    {
        let store = Store::open_in_memory().await?;
        store.add_contact(&bob(), Utc::now()).await?;
        for key in ["bob", "BOB@example.org", "Bob.Agent@Example.org"] {
            assert_eq!(
                store.find_contact(key).await?.map(|c| c.name),
                Some("Bob".into()),
                "{key}"
            );
        }
        assert_eq!(store.contacts().await?[0].groups, vec!["team".to_string()]);
        Ok(())
    }

    #[tokio::test]
    async fn a_second_contact_with_the_same_jid_is_refused_with_the_holder_named()
    -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        store.add_contact(&bob(), Utc::now()).await?;
        let mut other = bob();
        other.name = "Robert".into();
        other.agent_jid = None;
        let err = store
            .add_contact(&other, Utc::now())
            .await
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("already used by contact 'Bob'")));
        Ok(())
    }

    #[tokio::test]
    async fn removing_a_contact_removes_its_groups() -> Result<(), StoreError> {
        let store = Store::open_in_memory().await?;
        store.add_contact(&bob(), Utc::now()).await?;
        store.remove_contact("bob").await?;
        assert!(store.contacts().await?.is_empty());
        assert!(store.remove_contact("bob").await.is_err());
        Ok(())
    }
}
