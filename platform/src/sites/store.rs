//! The `sites` table: which name serves which build of whose project. Every change is one
//! statement; the row is what makes a build live, so pointing it at a new build is the
//! atomic step of a publish.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::schema::{sites, workspaces};
use crate::users::UserId;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sites)]
pub struct Site {
    pub name: String,
    pub user_id: UserId,
    pub project_id: Uuid,
    pub build: Uuid,
    pub bytes: i64,
    pub files: i32,
    pub created_at: DateTime<Utc>,
    pub published_at: DateTime<Utc>,
}

pub async fn find(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<Site>> {
    sites::table
        .find(name)
        .select(Site::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn of_user(conn: &mut AsyncPgConnection, user: UserId) -> QueryResult<Vec<Site>> {
    sites::table
        .filter(sites::user_id.eq(user))
        .order(sites::name.asc())
        .select(Site::as_select())
        .load(conn)
        .await
}

/// The bytes of `user`'s sites other than `except`.
pub async fn bytes_of_user(
    conn: &mut AsyncPgConnection,
    user: UserId,
    except: &str,
) -> QueryResult<i64> {
    sites::table
        .filter(sites::user_id.eq(user))
        .filter(sites::name.ne(except))
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "COALESCE(SUM(bytes), 0)::bigint",
        ))
        .first(conn)
        .await
}

/// Whether `name` is the workspace slug of a user other than `user`.
pub async fn is_others_workspace(
    conn: &mut AsyncPgConnection,
    name: &str,
    user: UserId,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        workspaces::table
            .filter(workspaces::slug.eq(name))
            .filter(workspaces::user_id.ne(user)),
    ))
    .get_result(conn)
    .await
}

/// Makes `name` serve `build` for `user`: a new site, or a new build of `user`'s own.
/// Returns the build it replaced, or `Err(Taken)` when the name is someone else's.
pub async fn point(
    conn: &mut AsyncPgConnection,
    name: &str,
    user: UserId,
    project: Uuid,
    build: Uuid,
    bytes: i64,
    files: i32,
) -> Result<Option<Uuid>, PointError> {
    use diesel_async::AsyncConnection;
    conn.transaction(async move |conn| -> Result<Option<Uuid>, PointError> {
        {
            let current: Option<(UserId, Uuid)> = sites::table
                .find(name)
                .select((sites::user_id, sites::build))
                .for_update()
                .first(conn)
                .await
                .optional()?;
            match current {
                Some((owner, _)) if owner != user => Err(PointError::Taken),
                Some((_, old)) => {
                    diesel::update(sites::table.find(name))
                        .set((
                            sites::project_id.eq(project),
                            sites::build.eq(build),
                            sites::bytes.eq(bytes),
                            sites::files.eq(files),
                            sites::published_at.eq(Utc::now()),
                        ))
                        .execute(conn)
                        .await?;
                    Ok(Some(old))
                }
                None => {
                    let inserted = diesel::insert_into(sites::table)
                        .values((
                            sites::name.eq(name),
                            sites::user_id.eq(user),
                            sites::project_id.eq(project),
                            sites::build.eq(build),
                            sites::bytes.eq(bytes),
                            sites::files.eq(files),
                        ))
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?;
                    // Someone published this name between our look and our insert.
                    if inserted == 0 {
                        return Err(PointError::Taken);
                    }
                    Ok(None)
                }
            }
        }
    })
    .await
}

#[derive(Debug, thiserror::Error)]
pub enum PointError {
    #[error("the name is another user's site")]
    Taken,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Removes `user`'s site `name`; the build it served, if there was one.
pub async fn remove(
    conn: &mut AsyncPgConnection,
    name: &str,
    user: UserId,
) -> QueryResult<Option<Uuid>> {
    diesel::delete(
        sites::table
            .filter(sites::name.eq(name))
            .filter(sites::user_id.eq(user)),
    )
    .returning(sites::build)
    .get_result(conn)
    .await
    .optional()
}
