//! Groups, their members and invitations ([`polo_store::groups`]).
//!
//! The three tables are small instance-wide (reference) tables under Citus.
//! Every write that changes who is in a group locks the group's row first
//! (`FOR UPDATE`), so two admins demoting each other at once cannot leave a
//! group without an admin, and a join locks its invitation's row, so an
//! invitation for one use admits one person. A group's zones are rows of
//! the per-user `zones` table (the maker's shard); deleting a group, which
//! reaches every member's shard, runs Citus' multi-shard statements in
//! sequential mode so that the reference tables may be written in the same
//! transaction (plain PostgreSQL ignores the setting).

use polo_domain::{Timestamp, UserId};
use polo_store::clock::now;
use polo_store::{
    Group, GroupMember, Invitation, JoinOutcome, Membership, NewInvitation, StoreError, StoreResult, ZoneRow,
};
use postgres::{GenericClient, Row};

use crate::PostgresStore;
use crate::auth::user_exists;
use crate::error::Db;
use crate::statements::Tx;

const GROUP_COLUMNS: &str = "id, name, created_by, created_ms";
const INVITATION_COLUMNS: &str = "id, group_id, created_by, created_ms, expires_ms, max_uses, uses, revoked_ms";
const SEQUENTIAL: &str = "SET LOCAL citus.multi_shard_modify_mode TO 'sequential'";

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn group_from_row(r: &Row) -> Group {
    Group {
        id: r.get(0),
        name: r.get(1),
        created_by: r.get::<_, Option<i64>>(2).map(UserId),
        created: Timestamp(r.get(3)),
    }
}

fn invitation_from_row(r: &Row) -> Invitation {
    Invitation {
        id: r.get(0),
        group: r.get(1),
        created_by: r.get::<_, Option<i64>>(2).map(UserId),
        created: Timestamp(r.get(3)),
        expires: Timestamp(r.get(4)),
        max_uses: count(r.get(5)),
        uses: count(r.get(6)),
        revoked: r.get::<_, Option<i64>>(7).map(Timestamp),
    }
}

fn group_by_id(c: &mut impl GenericClient, id: i64, lock: bool) -> StoreResult<Option<Group>> {
    let sql = format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = $1{}", if lock { " FOR UPDATE" } else { "" });
    Ok(c.query_opt(sql.as_str(), &[&id]).db()?.map(|r| group_from_row(&r)))
}

fn admins(c: &mut impl GenericClient, id: i64) -> StoreResult<i64> {
    Ok(c.query_one("SELECT count(*) FROM group_members WHERE group_id = $1 AND is_admin", &[&id]).db()?.get(0))
}

fn standing(c: &mut impl GenericClient, id: i64, user: UserId) -> StoreResult<Option<bool>> {
    Ok(c.query_opt("SELECT is_admin FROM group_members WHERE group_id = $1 AND user_id = $2", &[&id, &user.0])
        .db()?
        .map(|r| r.get(0)))
}

fn refuse_last_admin(c: &mut impl GenericClient, id: i64, user: UserId) -> StoreResult<()> {
    if standing(c, id, user)? == Some(true) && admins(c, id)? <= 1 {
        return Err(StoreError::Refused(format!(
            "user {user} is the only admin of group {id}; make another member an admin first"
        )));
    }
    Ok(())
}

/// What deleting account `id` does to groups, inside its transaction: its
/// memberships and the invitations it made go; a group it was the last
/// admin of gets its longest-standing member as admin, and a group left
/// without members is deleted (the account's own zones go with the
/// account). Only reference tables are written: the deletion may touch no
/// other account's shard.
pub(crate) fn forget_account(tx: &mut Tx<'_>, id: i64) -> StoreResult<()> {
    let groups: Vec<i64> = tx
        .query("SELECT group_id FROM group_members WHERE user_id = $1 ORDER BY group_id", &[&id])
        .db()?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for group in &groups {
        group_by_id(&mut **tx, *group, true)?;
    }
    tx.execute("DELETE FROM group_members WHERE user_id = $1", &[&id]).db()?;
    tx.execute("DELETE FROM group_invitations WHERE created_by = $1", &[&id]).db()?;
    tx.execute("UPDATE user_groups SET created_by = NULL WHERE created_by = $1", &[&id]).db()?;
    for group in groups {
        let members: i64 =
            tx.query_one("SELECT count(*) FROM group_members WHERE group_id = $1", &[&group]).db()?.get(0);
        if members == 0 {
            tx.execute("DELETE FROM group_invitations WHERE group_id = $1", &[&group]).db()?;
            tx.execute("DELETE FROM user_groups WHERE id = $1", &[&group]).db()?;
        } else if admins(&mut **tx, group)? == 0 {
            tx.execute(
                "UPDATE group_members SET is_admin = true WHERE group_id = $1 AND user_id = \
                 (SELECT user_id FROM group_members WHERE group_id = $1 ORDER BY joined_ms, user_id LIMIT 1)",
                &[&group],
            )
            .db()?;
        }
    }
    Ok(())
}

pub(crate) fn create_group(store: &PostgresStore, name: &str, creator: UserId, at: Timestamp) -> StoreResult<Group> {
    store.write(|tx| {
        if !user_exists(&mut **tx, creator)? {
            return Err(StoreError::NotFound(format!("user {creator}")));
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO user_groups (name, created_by, created_ms) VALUES ($1, $2, $3) RETURNING id",
                &[&name, &creator.0, &at.0],
            )
            .db()?
            .get(0);
        tx.execute(
            "INSERT INTO group_members (group_id, user_id, is_admin, joined_ms) VALUES ($1, $2, true, $3)",
            &[&id, &creator.0, &at.0],
        )
        .db()?;
        Ok(Group { id, name: name.to_owned(), created_by: Some(creator), created: at })
    })
}

pub(crate) fn group(store: &PostgresStore, id: i64) -> StoreResult<Option<Group>> {
    store.read(|c| group_by_id(&mut **c, id, false))
}

pub(crate) fn groups_of(store: &PostgresStore, user: UserId) -> StoreResult<Vec<Membership>> {
    store.read(|c| {
        let rows = c
            .query(
                "SELECT g.id, g.name, g.created_by, g.created_ms, m.is_admin, \
                 (SELECT count(*) FROM group_members n WHERE n.group_id = g.id) \
                 FROM group_members m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = $1 ORDER BY g.id",
                &[&user.0],
            )
            .db()?;
        Ok(rows
            .iter()
            .map(|r| Membership {
                group: group_from_row(r),
                admin: r.get(4),
                members: u32::try_from(r.get::<_, i64>(5)).unwrap_or(u32::MAX),
            })
            .collect())
    })
}

pub(crate) fn rename_group(store: &PostgresStore, id: i64, name: &str) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("UPDATE user_groups SET name = $2 WHERE id = $1", &[&id, &name]).db()? > 0))
}

pub(crate) fn delete_group(store: &PostgresStore, id: i64) -> StoreResult<bool> {
    store.write(|tx| {
        tx.batch_execute(SEQUENTIAL).db()?;
        if group_by_id(&mut **tx, id, true)?.is_none() {
            return Ok(false);
        }
        tx.execute("DELETE FROM zone_states WHERE zone_id IN (SELECT id FROM zones WHERE group_id = $1)", &[&id])
            .db()?;
        tx.execute("DELETE FROM zones WHERE group_id = $1", &[&id]).db()?;
        tx.execute("DELETE FROM group_invitations WHERE group_id = $1", &[&id]).db()?;
        tx.execute("DELETE FROM group_members WHERE group_id = $1", &[&id]).db()?;
        Ok(tx.execute("DELETE FROM user_groups WHERE id = $1", &[&id]).db()? > 0)
    })
}

pub(crate) fn group_members(store: &PostgresStore, id: i64) -> StoreResult<Vec<GroupMember>> {
    store.read(|c| {
        let rows = c
            .query(
                "SELECT m.user_id, u.name, m.is_admin, m.joined_ms FROM group_members m \
                 JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 \
                 ORDER BY m.is_admin DESC, m.joined_ms, m.user_id",
                &[&id],
            )
            .db()?;
        Ok(rows
            .iter()
            .map(|r| GroupMember {
                group: id,
                user: UserId(r.get(0)),
                name: r.get(1),
                admin: r.get(2),
                joined: Timestamp(r.get(3)),
            })
            .collect())
    })
}

pub(crate) fn set_group_admin(store: &PostgresStore, id: i64, user: UserId, admin: bool) -> StoreResult<bool> {
    store.write(|tx| {
        if group_by_id(&mut **tx, id, true)?.is_none() {
            return Ok(false);
        }
        if !admin {
            refuse_last_admin(&mut **tx, id, user)?;
        }
        let n = tx
            .execute(
                "UPDATE group_members SET is_admin = $3 WHERE group_id = $1 AND user_id = $2",
                &[&id, &user.0, &admin],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn remove_group_member(store: &PostgresStore, id: i64, user: UserId) -> StoreResult<bool> {
    store.write(|tx| {
        tx.batch_execute(SEQUENTIAL).db()?;
        if group_by_id(&mut **tx, id, true)?.is_none() {
            return Ok(false);
        }
        refuse_last_admin(&mut **tx, id, user)?;
        let n = tx.execute("DELETE FROM group_members WHERE group_id = $1 AND user_id = $2", &[&id, &user.0]).db()?;
        if n > 0 {
            let zones: Vec<i64> =
                tx.query("SELECT id FROM zones WHERE group_id = $1", &[&id]).db()?.iter().map(|r| r.get(0)).collect();
            tx.execute("DELETE FROM zone_states WHERE user_id = $1 AND zone_id = ANY($2)", &[&user.0, &zones]).db()?;
        }
        Ok(n > 0)
    })
}

pub(crate) fn create_group_invitation(
    store: &PostgresStore,
    invitation: &NewInvitation,
    token_hash: &[u8; 32],
) -> StoreResult<Invitation> {
    let max_uses = i32::try_from(invitation.max_uses).map_err(|_| {
        StoreError::Refused(format!("{} uses are more than an invitation may have", invitation.max_uses))
    })?;
    store.write(|tx| {
        if group_by_id(&mut **tx, invitation.group, false)?.is_none() {
            return Err(StoreError::NotFound(format!("group {}", invitation.group)));
        }
        if !user_exists(&mut **tx, invitation.created_by)? {
            return Err(StoreError::NotFound(format!("user {}", invitation.created_by)));
        }
        let created = now();
        let row = tx
            .query_opt(
                "INSERT INTO group_invitations (group_id, token_hash, created_by, created_ms, expires_ms, max_uses, \
                 uses) VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (token_hash) DO NOTHING RETURNING id",
                &[
                    &invitation.group,
                    &&token_hash[..],
                    &invitation.created_by.0,
                    &created.0,
                    &invitation.expires.0,
                    &max_uses,
                ],
            )
            .db()?;
        let Some(row) = row else {
            return Err(StoreError::AlreadyExists("an invitation with this token".to_owned()));
        };
        Ok(Invitation {
            id: row.get(0),
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

pub(crate) fn group_invitations(store: &PostgresStore, id: i64) -> StoreResult<Vec<Invitation>> {
    store.read(|c| {
        let rows = c
            .query(
                &format!("SELECT {INVITATION_COLUMNS} FROM group_invitations WHERE group_id = $1 ORDER BY id"),
                &[&id],
            )
            .db()?;
        Ok(rows.iter().map(invitation_from_row).collect())
    })
}

pub(crate) fn revoke_group_invitation(
    store: &PostgresStore,
    id: i64,
    invitation: i64,
    at: Timestamp,
) -> StoreResult<bool> {
    store.write(|tx| {
        let n = tx
            .execute(
                "UPDATE group_invitations SET revoked_ms = coalesce(revoked_ms, $3) WHERE group_id = $1 AND id = $2",
                &[&id, &invitation, &at.0],
            )
            .db()?;
        Ok(n > 0)
    })
}

fn invitation_in(
    c: &mut impl GenericClient,
    token_hash: &[u8; 32],
    lock: bool,
) -> StoreResult<Option<(Invitation, Group)>> {
    let sql = format!(
        "SELECT {INVITATION_COLUMNS} FROM group_invitations WHERE token_hash = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let Some(row) = c.query_opt(sql.as_str(), &[&&token_hash[..]]).db()? else { return Ok(None) };
    let invitation = invitation_from_row(&row);
    Ok(group_by_id(c, invitation.group, lock)?.map(|g| (invitation, g)))
}

pub(crate) fn invitation_by_hash(
    store: &PostgresStore,
    token_hash: &[u8; 32],
) -> StoreResult<Option<(Invitation, Group)>> {
    store.read(|c| invitation_in(&mut **c, token_hash, false))
}

pub(crate) fn join_group(
    store: &PostgresStore,
    token_hash: &[u8; 32],
    user: UserId,
    now: Timestamp,
) -> StoreResult<JoinOutcome> {
    store.write(|tx| {
        if !user_exists(&mut **tx, user)? {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        let Some((invitation, group)) = invitation_in(&mut **tx, token_hash, true)? else {
            return Ok(JoinOutcome::Unknown);
        };
        if standing(&mut **tx, group.id, user)?.is_some() {
            return Ok(JoinOutcome::AlreadyMember(group));
        }
        if let Some(refusal) = invitation.refusal(now) {
            return Ok(JoinOutcome::Refused(group, refusal));
        }
        tx.execute("UPDATE group_invitations SET uses = uses + 1 WHERE id = $1", &[&invitation.id]).db()?;
        tx.execute(
            "INSERT INTO group_members (group_id, user_id, is_admin, joined_ms) VALUES ($1, $2, false, $3)",
            &[&group.id, &user.0, &now.0],
        )
        .db()?;
        Ok(JoinOutcome::Joined(group))
    })
}

pub(crate) fn create_group_zone(
    store: &PostgresStore,
    user: UserId,
    group: i64,
    body: &str,
    at: Timestamp,
) -> StoreResult<i64> {
    store.write(|tx| {
        if !user_exists(&mut **tx, user)? {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        if group_by_id(&mut **tx, group, false)?.is_none() {
            return Err(StoreError::NotFound(format!("group {group}")));
        }
        let row = tx
            .query_one(
                "INSERT INTO zones (user_id, group_id, body, updated_ms) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&user.0, &group, &body, &at.0],
            )
            .db()?;
        Ok(row.get(0))
    })
}

pub(crate) fn group_zones(store: &PostgresStore, group: i64) -> StoreResult<Vec<ZoneRow>> {
    store.read(|c| {
        let rows = c
            .query(
                "SELECT id, user_id, group_id, body, updated_ms FROM zones WHERE group_id = $1 \
                 AND EXISTS (SELECT 1 FROM user_groups WHERE id = $1) ORDER BY id",
                &[&group],
            )
            .db()?;
        Ok(rows.iter().map(crate::zones::zone_from_row).collect())
    })
}
