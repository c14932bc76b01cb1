//! Groups, their members and invitations ([`polo_store::groups`]), in the
//! tables of schema version 17.
//!
//! Every write runs in the writer's one `BEGIN IMMEDIATE` transaction, so
//! the rules that span rows (a group keeps an admin, an invitation admits as
//! many people as it says) are checked and kept in the same transaction
//! that changes them. Nothing here writes the change log.

use polo_domain::{Timestamp, UserId};
use polo_store::{
    Group, GroupMember, Invitation, JoinOutcome, Membership, NewInvitation, StoreError, StoreResult, ZoneRow,
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::{Db, SqliteStore};

const GROUP_COLUMNS: &str = "id, name, created_by, created_ms";
const INVITATION_COLUMNS: &str = "id, group_id, created_by, created_ms, expires_ms, max_uses, uses, revoked_ms";

fn group_from_row(r: &Row<'_>) -> rusqlite::Result<Group> {
    Ok(Group {
        id: r.get(0)?,
        name: r.get(1)?,
        created_by: r.get::<_, Option<i64>>(2)?.map(UserId),
        created: Timestamp(r.get(3)?),
    })
}

fn invitation_from_row(r: &Row<'_>) -> rusqlite::Result<Invitation> {
    Ok(Invitation {
        id: r.get(0)?,
        group: r.get(1)?,
        created_by: r.get::<_, Option<i64>>(2)?.map(UserId),
        created: Timestamp(r.get(3)?),
        expires: Timestamp(r.get(4)?),
        max_uses: r.get(5)?,
        uses: r.get(6)?,
        revoked: r.get::<_, Option<i64>>(7)?.map(Timestamp),
    })
}

fn group_by_id(c: &Connection, id: i64) -> StoreResult<Option<Group>> {
    c.prepare_cached(&format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = ?1"))
        .db()?
        .query_row([id], group_from_row)
        .optional()
        .db()
}

fn user_exists(c: &Connection, user: UserId) -> StoreResult<bool> {
    c.prepare_cached("SELECT 1 FROM users WHERE id = ?1").db()?.exists([user.0]).db()
}

fn admins(c: &Connection, id: i64) -> StoreResult<i64> {
    c.prepare_cached("SELECT count(*) FROM group_members WHERE group_id = ?1 AND is_admin")
        .db()?
        .query_row([id], |r| r.get(0))
        .db()
}

/// Whether `user` is an admin of group `id` (`None`: not a member).
fn standing(c: &Connection, id: i64, user: UserId) -> StoreResult<Option<bool>> {
    c.prepare_cached("SELECT is_admin FROM group_members WHERE group_id = ?1 AND user_id = ?2")
        .db()?
        .query_row([id, user.0], |r| r.get(0))
        .optional()
        .db()
}

fn refuse_last_admin(c: &Connection, id: i64, user: UserId) -> StoreResult<()> {
    if standing(c, id, user)? == Some(true) && admins(c, id)? <= 1 {
        return Err(StoreError::Refused(format!(
            "user {user} is the only admin of group {id}; make another member an admin first"
        )));
    }
    Ok(())
}

/// Deletes the devices' states of `user` in the zones of group `id`.
fn forget_states(tx: &Transaction<'_>, id: i64, user: Option<UserId>) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM zone_states WHERE (?2 IS NULL OR user_id = ?2) \
         AND zone_id IN (SELECT id FROM zones WHERE group_id = ?1)",
        params![id, user.map(|u| u.0)],
    )
    .db()?;
    Ok(())
}

fn delete_group_rows(tx: &Transaction<'_>, id: i64) -> StoreResult<bool> {
    forget_states(tx, id, None)?;
    tx.execute("DELETE FROM zones WHERE group_id = ?1", [id]).db()?;
    tx.execute("DELETE FROM group_invitations WHERE group_id = ?1", [id]).db()?;
    tx.execute("DELETE FROM group_members WHERE group_id = ?1", [id]).db()?;
    Ok(tx.execute("DELETE FROM user_groups WHERE id = ?1", [id]).db()? > 0)
}

/// What deleting account `id` does to groups, inside its transaction: its
/// memberships and the invitations it made go; a group it was the last
/// admin of gets its longest-standing member as admin, and a group left
/// without members is deleted (the account's own zones go with the account).
pub(crate) fn forget_account(tx: &Transaction<'_>, id: i64) -> StoreResult<()> {
    let groups: Vec<i64> = tx
        .prepare("SELECT group_id FROM group_members WHERE user_id = ?1")
        .db()?
        .query_map([id], |r| r.get(0))
        .db()?
        .collect::<rusqlite::Result<_>>()
        .db()?;
    tx.execute("DELETE FROM group_members WHERE user_id = ?1", [id]).db()?;
    tx.execute("DELETE FROM group_invitations WHERE created_by = ?1", [id]).db()?;
    tx.execute("UPDATE user_groups SET created_by = NULL WHERE created_by = ?1", [id]).db()?;
    for group in groups {
        let members: i64 =
            tx.query_row("SELECT count(*) FROM group_members WHERE group_id = ?1", [group], |r| r.get(0)).db()?;
        if members == 0 {
            // Only instance-wide rows, as in PostgreSQL, where this
            // transaction may touch no other account's shard: zones other
            // (former) members made for it stay with their accounts,
            // belonging to no group anyone is in.
            tx.execute("DELETE FROM group_invitations WHERE group_id = ?1", [group]).db()?;
            tx.execute("DELETE FROM user_groups WHERE id = ?1", [group]).db()?;
        } else if admins(tx, group)? == 0 {
            tx.execute(
                "UPDATE group_members SET is_admin = 1 WHERE group_id = ?1 AND user_id = \
                 (SELECT user_id FROM group_members WHERE group_id = ?1 ORDER BY joined_ms, user_id LIMIT 1)",
                [group],
            )
            .db()?;
        }
    }
    Ok(())
}

pub(crate) fn create_group(store: &SqliteStore, name: &str, creator: UserId, at: Timestamp) -> StoreResult<Group> {
    store.write(|tx| {
        if !user_exists(tx, creator)? {
            return Err(StoreError::NotFound(format!("user {creator}")));
        }
        tx.execute(
            "INSERT INTO user_groups (name, created_by, created_ms) VALUES (?1, ?2, ?3)",
            params![name, creator.0, at.0],
        )
        .db()?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO group_members (group_id, user_id, is_admin, joined_ms) VALUES (?1, ?2, 1, ?3)",
            params![id, creator.0, at.0],
        )
        .db()?;
        Ok(Group { id, name: name.to_owned(), created_by: Some(creator), created: at })
    })
}

pub(crate) fn group(store: &SqliteStore, id: i64) -> StoreResult<Option<Group>> {
    store.read(|c| group_by_id(c, id))
}

pub(crate) fn groups_of(store: &SqliteStore, user: UserId) -> StoreResult<Vec<Membership>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(
                "SELECT g.id, g.name, g.created_by, g.created_ms, m.is_admin, \
                 (SELECT count(*) FROM group_members n WHERE n.group_id = g.id) \
                 FROM group_members m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = ?1 ORDER BY g.id",
            )
            .db()?;
        let rows = stmt.query_map([user.0], |r| {
            Ok(Membership { group: group_from_row(r)?, admin: r.get(4)?, members: r.get(5)? })
        });
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn rename_group(store: &SqliteStore, id: i64, name: &str) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("UPDATE user_groups SET name = ?2 WHERE id = ?1", params![id, name]).db()? > 0))
}

pub(crate) fn delete_group(store: &SqliteStore, id: i64) -> StoreResult<bool> {
    store.write(|tx| delete_group_rows(tx, id))
}

pub(crate) fn group_members(store: &SqliteStore, id: i64) -> StoreResult<Vec<GroupMember>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(
                "SELECT m.user_id, u.name, m.is_admin, m.joined_ms FROM group_members m \
                 JOIN users u ON u.id = m.user_id WHERE m.group_id = ?1 \
                 ORDER BY m.is_admin DESC, m.joined_ms, m.user_id",
            )
            .db()?;
        let rows = stmt.query_map([id], |r| {
            Ok(GroupMember {
                group: id,
                user: UserId(r.get(0)?),
                name: r.get(1)?,
                admin: r.get(2)?,
                joined: Timestamp(r.get(3)?),
            })
        });
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn set_group_admin(store: &SqliteStore, id: i64, user: UserId, admin: bool) -> StoreResult<bool> {
    store.write(|tx| {
        if !admin {
            refuse_last_admin(tx, id, user)?;
        }
        let n = tx
            .execute(
                "UPDATE group_members SET is_admin = ?3 WHERE group_id = ?1 AND user_id = ?2",
                params![id, user.0, admin],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn remove_group_member(store: &SqliteStore, id: i64, user: UserId) -> StoreResult<bool> {
    store.write(|tx| {
        refuse_last_admin(tx, id, user)?;
        let n =
            tx.execute("DELETE FROM group_members WHERE group_id = ?1 AND user_id = ?2", params![id, user.0]).db()?;
        if n > 0 {
            forget_states(tx, id, Some(user))?;
        }
        Ok(n > 0)
    })
}

pub(crate) fn create_group_invitation(
    store: &SqliteStore,
    invitation: &NewInvitation,
    token_hash: &[u8; 32],
) -> StoreResult<Invitation> {
    store.write(|tx| {
        if group_by_id(tx, invitation.group)?.is_none() {
            return Err(StoreError::NotFound(format!("group {}", invitation.group)));
        }
        if !user_exists(tx, invitation.created_by)? {
            return Err(StoreError::NotFound(format!("user {}", invitation.created_by)));
        }
        let taken = tx
            .prepare_cached("SELECT 1 FROM group_invitations WHERE token_hash = ?1")
            .db()?
            .exists([&token_hash[..]])
            .db()?;
        if taken {
            return Err(StoreError::AlreadyExists("an invitation with this token".to_owned()));
        }
        let created = crate::now();
        tx.execute(
            "INSERT INTO group_invitations (group_id, token_hash, created_by, created_ms, expires_ms, max_uses, uses) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            params![
                invitation.group,
                &token_hash[..],
                invitation.created_by.0,
                created.0,
                invitation.expires.0,
                invitation.max_uses
            ],
        )
        .db()?;
        Ok(Invitation {
            id: tx.last_insert_rowid(),
            group: invitation.group,
            created_by: Some(invitation.created_by),
            created,
            expires: invitation.expires,
            max_uses: invitation.max_uses,
            uses: 0,
            revoked: None,
        })
    })
}

pub(crate) fn group_invitations(store: &SqliteStore, id: i64) -> StoreResult<Vec<Invitation>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!(
                "SELECT {INVITATION_COLUMNS} FROM group_invitations WHERE group_id = ?1 ORDER BY id"
            ))
            .db()?;
        let rows = stmt.query_map([id], invitation_from_row);
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn revoke_group_invitation(
    store: &SqliteStore,
    id: i64,
    invitation: i64,
    at: Timestamp,
) -> StoreResult<bool> {
    store.write(|tx| {
        let n = tx
            .execute(
                "UPDATE group_invitations SET revoked_ms = coalesce(revoked_ms, ?3) WHERE group_id = ?1 AND id = ?2",
                params![id, invitation, at.0],
            )
            .db()?;
        Ok(n > 0)
    })
}

fn invitation_in(c: &Connection, token_hash: &[u8; 32]) -> StoreResult<Option<(Invitation, Group)>> {
    let invitation = c
        .prepare_cached(&format!("SELECT {INVITATION_COLUMNS} FROM group_invitations WHERE token_hash = ?1"))
        .db()?
        .query_row([&token_hash[..]], invitation_from_row)
        .optional()
        .db()?;
    let Some(invitation) = invitation else { return Ok(None) };
    Ok(group_by_id(c, invitation.group)?.map(|g| (invitation, g)))
}

pub(crate) fn invitation_by_hash(
    store: &SqliteStore,
    token_hash: &[u8; 32],
) -> StoreResult<Option<(Invitation, Group)>> {
    store.read(|c| invitation_in(c, token_hash))
}

pub(crate) fn join_group(
    store: &SqliteStore,
    token_hash: &[u8; 32],
    user: UserId,
    now: Timestamp,
) -> StoreResult<JoinOutcome> {
    store.write(|tx| {
        if !user_exists(tx, user)? {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        let Some((invitation, group)) = invitation_in(tx, token_hash)? else { return Ok(JoinOutcome::Unknown) };
        if standing(tx, group.id, user)?.is_some() {
            return Ok(JoinOutcome::AlreadyMember(group));
        }
        if let Some(refusal) = invitation.refusal(now) {
            return Ok(JoinOutcome::Refused(group, refusal));
        }
        tx.execute("UPDATE group_invitations SET uses = uses + 1 WHERE id = ?1", [invitation.id]).db()?;
        tx.execute(
            "INSERT INTO group_members (group_id, user_id, is_admin, joined_ms) VALUES (?1, ?2, 0, ?3)",
            params![group.id, user.0, now.0],
        )
        .db()?;
        Ok(JoinOutcome::Joined(group))
    })
}

pub(crate) fn create_group_zone(
    store: &SqliteStore,
    user: UserId,
    group: i64,
    body: &str,
    at: Timestamp,
) -> StoreResult<i64> {
    store.write(|tx| {
        if !user_exists(tx, user)? {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        if group_by_id(tx, group)?.is_none() {
            return Err(StoreError::NotFound(format!("group {group}")));
        }
        tx.execute(
            "INSERT INTO zones (user_id, group_id, body, updated_ms) VALUES (?1, ?2, ?3, ?4)",
            params![user.0, group, body, at.0],
        )
        .db()?;
        Ok(tx.last_insert_rowid())
    })
}

pub(crate) fn group_zones(store: &SqliteStore, group: i64) -> StoreResult<Vec<ZoneRow>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(
                "SELECT id, user_id, group_id, body, updated_ms FROM zones WHERE group_id = ?1 \
                 AND EXISTS (SELECT 1 FROM user_groups WHERE id = ?1) ORDER BY id",
            )
            .db()?;
        let rows = stmt.query_map([group], crate::zones::zone_from_row);
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}
