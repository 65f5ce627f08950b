//! Handlers of the admin API. Each parses its input, does the work in one transaction where
//! several rows change, writes the audit record (also for refusals), and, when rules
//! changed, asks every replica to reload the policy. What an admin does to a whole account
//! (disable, enable, delete) is `admin::accounts`, shared with the command line.

use actix_web::{HttpResponse, web};
use diesel_async::AsyncConnection;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::health;
use crate::admin::accounts::{Accounts, Deleted, Disabled};
use crate::admin::audited;
use crate::admin::users::{self, UserDetail, UserPage, UserQuery};
use crate::audit::{self, Action, Audit, Filter, Record};
use crate::authz::access_levels::{self, AccessLevel, AccessLevelInput, AccessLevelSummary};
use crate::authz::roles::{self, RoleInfo, RoleInput};
use crate::error::{ApiError, ErrorBody};
use crate::users::UserId;
use crate::web::app::AppState;

type State = web::Data<AppState>;

/// The account use-cases, over this server's connections.
fn accounts(state: &AppState) -> Accounts<'_> {
    Accounts {
        db: &state.db,
        sessions: &state.sessions,
        tenants: &state.tenants,
        authz: &state.authz,
    }
}

/// Users, searched and paginated.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(UserQuery),
    responses((status = 200, body = UserPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_users(
    state: State,
    query: web::Query<UserQuery>,
) -> Result<web::Json<UserPage>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(users::search(&mut conn, &query).await?))
}

/// One user: account, identities, roles, access level and live sessions.
#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = UserDetail), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn show_user(
    state: State,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<UserDetail>, ApiError> {
    let id = UserId(id.into_inner());
    let mut conn = state.db.get().await?;
    let user = users::require(&mut conn, id).await?;
    let held = roles::of_user(&mut conn, id).await?;
    let identities = crate::users::identities_of(&mut conn, id).await?;
    let sessions = state.sessions.list(id).await?.len();
    Ok(web::Json(UserDetail {
        email_verified: user.email_verified,
        updated_at: user.updated_at,
        user: users::summary(user, held),
        identities,
        sessions,
    }))
}

/// Disables an account: its sessions and API tokens end at once. The last admin cannot be
/// disabled.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/disable", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Disabled), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The last admin"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn disable_user(
    state: State,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<Disabled>, ApiError> {
    let id = UserId(id.into_inner());
    let disabled = accounts(&state).disable(&audit, id).await?;
    state.gateway.callers.changed(Some(id)).await;
    Ok(web::Json(disabled))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteUserQuery {
    /// Also delete the user's workspace volume (their sites, documents…) — for good.
    #[serde(default)]
    pub delete_volume: bool,
}

/// Deletes an account: its sessions end, its containers are removed, and its workspace
/// volume too when `delete_volume=true`. The last admin cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}", tag = "admin", params(("id" = uuid::Uuid, Path), DeleteUserQuery),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The last admin")),
    security(("session" = []), ("token" = [])))]
pub async fn delete_user(
    state: State,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
    query: web::Query<DeleteUserQuery>,
) -> Result<web::Json<Deleted>, ApiError> {
    let id = UserId(id.into_inner());
    let deleted = accounts(&state)
        .delete(&audit, id, query.delete_volume)
        .await?;
    Ok(web::Json(deleted))
}

/// Enables a disabled account. Its old sessions and tokens stay ended.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/enable", tag = "admin", params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Enabled"), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn enable_user(
    state: State,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(id.into_inner());
    accounts(&state).enable(&audit, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn change_role(
    state: &AppState,
    audit: &Audit,
    user: UserId,
    role: &str,
    grant: bool,
) -> Result<(), ApiError> {
    let result = async {
        let role = roles::parse_name(role)?;
        let mut conn = state.db.get().await?;
        conn.transaction(async |conn| {
            roles::lock(conn).await?;
            if grant {
                roles::grant(conn, user, &role).await.map(drop)
            } else {
                roles::revoke(conn, user, &role).await
            }
        })
        .await?;
        state.authz.changed().await.map_err(ApiError::internal)
    }
    .await;
    let action = if grant {
        Action::RoleGrant
    } else {
        Action::RoleRevoke
    };
    audited(
        &state.db,
        audit,
        action,
        &audit::user_target(user),
        serde_json::json!({ "role": role }),
        result,
    )
    .await
}

/// Grants a role to a user. Takes effect on every replica within a second.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/roles/{role}", tag = "admin",
    params(("id" = uuid::Uuid, Path), ("role" = String, Path)),
    responses((status = 204, description = "The user holds the role"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn grant_role(
    state: State,
    audit: Audit,
    path: web::Path<(uuid::Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, role) = path.into_inner();
    change_role(&state, &audit, UserId(id), &role, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes a role from a user. The last admin keeps theirs.
#[utoipa::path(delete, path = "/api/v1/admin/users/{id}/roles/{role}", tag = "admin",
    params(("id" = uuid::Uuid, Path), ("role" = String, Path)),
    responses((status = 204, description = "Removed"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The last admin"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn revoke_role(
    state: State,
    audit: Audit,
    path: web::Path<(uuid::Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, role) = path.into_inner();
    change_role(&state, &audit, UserId(id), &role, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignAccessLevel {
    pub access_level: String,
}

/// Gives a user an access level.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/access-level", tag = "admin",
    params(("id" = uuid::Uuid, Path)), request_body = AssignAccessLevel,
    responses((status = 204, description = "Assigned"), (status = 404, body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn assign_access_level(
    state: State,
    audit: Audit,
    id: web::Path<uuid::Uuid>,
    body: web::Json<AssignAccessLevel>,
) -> Result<HttpResponse, ApiError> {
    let id = UserId(id.into_inner());
    let name = body.into_inner().access_level;
    let result = async {
        let name = access_levels::parse_name(&name)?;
        let mut conn = state.db.get().await?;
        access_levels::assign(&mut conn, id, &name).await
    }
    .await;
    let detail = match &result {
        Ok(previous) => serde_json::json!({ "access_level": name, "previous": previous }),
        Err(_) => serde_json::json!({ "access_level": name }),
    };
    audited(
        &state.db,
        &audit,
        Action::AccessLevelAssign,
        &audit::user_target(id),
        detail,
        result,
    )
    .await?;
    state.gateway.callers.changed(Some(id)).await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    pub roles: Vec<RoleInfo>,
}

/// Every role, with its permissions and number of holders.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "admin",
    responses((status = 200, body = RoleList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_roles(state: State) -> Result<web::Json<RoleList>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(RoleList {
        roles: roles::list(&mut conn).await?,
    }))
}

/// Creates a role, or replaces its description and permissions (not `admin`'s).
#[utoipa::path(put, path = "/api/v1/admin/roles/{role}", tag = "admin",
    params(("role" = String, Path)), request_body = RoleInput,
    responses((status = 201, description = "Created"), (status = 204, description = "Replaced"),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn define_role(
    state: State,
    audit: Audit,
    role: web::Path<String>,
    body: web::Json<RoleInput>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let result = async {
        let role = roles::parse_name(&role)?;
        let mut conn = state.db.get().await?;
        let created = conn
            .transaction(async |conn| {
                roles::lock(conn).await?;
                roles::define(conn, &role, &input).await
            })
            .await?;
        state.authz.changed().await.map_err(ApiError::internal)?;
        Ok(created)
    }
    .await;
    let detail =
        serde_json::json!({ "permissions": input.permissions, "description": input.description });
    let created = audited(
        &state.db,
        &audit,
        Action::RoleDefine,
        &format!("role:{role}"),
        detail,
        result,
    )
    .await?;
    Ok(if created {
        HttpResponse::Created().finish()
    } else {
        HttpResponse::NoContent().finish()
    })
}

/// Deletes a role that is not built in; its holders lose it.
#[utoipa::path(delete, path = "/api/v1/admin/roles/{role}", tag = "admin", params(("role" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A built-in role"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_role(
    state: State,
    audit: Audit,
    role: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        let role = roles::parse_name(&role)?;
        let mut conn = state.db.get().await?;
        let holders = conn
            .transaction(async |conn| {
                roles::lock(conn).await?;
                roles::delete(conn, &role).await
            })
            .await?;
        state.authz.changed().await.map_err(ApiError::internal)?;
        Ok(holders)
    }
    .await;
    let detail = match &result {
        Ok(holders) => serde_json::json!({ "holders": holders }),
        Err(_) => serde_json::json!({}),
    };
    audited(
        &state.db,
        &audit,
        Action::RoleDelete,
        &format!("role:{role}"),
        detail,
        result,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccessLevelList {
    pub access_levels: Vec<AccessLevelSummary>,
    /// The level new users get.
    pub default: String,
}

/// Every access level, with how many users have it.
#[utoipa::path(get, path = "/api/v1/admin/access-levels", tag = "admin",
    responses((status = 200, body = AccessLevelList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list_access_levels(state: State) -> Result<web::Json<AccessLevelList>, ApiError> {
    let mut conn = state.db.get().await?;
    Ok(web::Json(AccessLevelList {
        access_levels: access_levels::list(&mut conn).await?,
        default: state.onboarding.access_level.clone(),
    }))
}

/// One access level.
#[utoipa::path(get, path = "/api/v1/admin/access-levels/{name}", tag = "admin", params(("name" = String, Path)),
    responses((status = 200, body = AccessLevel), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn show_access_level(
    state: State,
    name: web::Path<String>,
) -> Result<web::Json<AccessLevel>, ApiError> {
    let name = access_levels::parse_name(&name)?;
    let mut conn = state.db.get().await?;
    Ok(web::Json(access_levels::require(&mut conn, &name).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAccessLevel {
    pub name: String,
    #[serde(flatten)]
    pub settings: AccessLevelInput,
}

/// Creates an access level.
#[utoipa::path(post, path = "/api/v1/admin/access-levels", tag = "admin", request_body = NewAccessLevel,
    responses((status = 201, body = AccessLevel), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create_access_level(
    state: State,
    audit: Audit,
    body: web::Json<NewAccessLevel>,
) -> Result<HttpResponse, ApiError> {
    let NewAccessLevel { name, settings } = body.into_inner();
    let result = async {
        let name = access_levels::parse_name(&name)?;
        let settings = settings.validate()?;
        let mut conn = state.db.get().await?;
        access_levels::create(&mut conn, &name, &settings).await
    }
    .await;
    let detail = serde_json::json!({});
    let created = audited(
        &state.db,
        &audit,
        Action::AccessLevelCreate,
        &format!("access_level:{name}"),
        detail,
        result,
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Replaces an access level's settings. Users who have it get the new limits.
#[utoipa::path(put, path = "/api/v1/admin/access-levels/{name}", tag = "admin",
    params(("name" = String, Path)), request_body = AccessLevelInput,
    responses((status = 200, body = AccessLevel), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn update_access_level(
    state: State,
    audit: Audit,
    name: web::Path<String>,
    body: web::Json<AccessLevelInput>,
) -> Result<web::Json<AccessLevel>, ApiError> {
    let result = async {
        let name = access_levels::parse_name(&name)?;
        let settings = body.into_inner().validate()?;
        let mut conn = state.db.get().await?;
        access_levels::update(&mut conn, &name, &settings).await
    }
    .await;
    let updated = audited(
        &state.db,
        &audit,
        Action::AccessLevelUpdate,
        &format!("access_level:{name}"),
        serde_json::json!({}),
        result,
    )
    .await?;
    state.gateway.callers.changed(None).await;
    Ok(web::Json(updated))
}

/// Deletes an access level that nobody has and that new users do not get.
#[utoipa::path(delete, path = "/api/v1/admin/access-levels/{name}", tag = "admin", params(("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "In use, or the default"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete_access_level(
    state: State,
    audit: Audit,
    name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let result = async {
        let name = access_levels::parse_name(&name)?;
        let mut conn = state.db.get().await?;
        access_levels::delete(&mut conn, &name, &state.onboarding.access_level).await
    }
    .await;
    audited(
        &state.db,
        &audit,
        Action::AccessLevelDelete,
        &format!("access_level:{name}"),
        serde_json::json!({}),
        result,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub records: Vec<Record>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

/// The audit log, newest first, filtered.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", params(Filter),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn audit_log(
    state: State,
    filter: web::Query<Filter>,
) -> Result<web::Json<AuditPage>, ApiError> {
    let mut conn = state.db.get().await?;
    let records = audit::search(&mut conn, &filter).await?;
    let full = records.len() as i64 == filter.limit.unwrap_or(100);
    Ok(web::Json(AuditPage {
        next_before: records.last().filter(|_| full).map(|r| r.id),
        records,
    }))
}

/// A sign-in method as admins see it (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminProvider {
    pub id: String,
    /// `local`, `oidc` or `github`.
    pub kind: &'static str,
    pub display_name: String,
    /// OIDC: the issuer; GitHub: the authorization URL.
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    /// Local accounts: whether anyone may register.
    pub registration_open: Option<bool>,
    /// Local accounts: whether registering needs an invitation.
    pub invitation_only: Option<bool>,
    /// Local accounts: whether new accounts confirm their address by mail (SMTP is set).
    pub email_verification: Option<bool>,
}

/// The configured identity providers (set in the configuration; secrets never shown).
#[utoipa::path(get, path = "/api/v1/admin/providers", tag = "admin",
    responses((status = 200, body = Vec<AdminProvider>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn providers(state: State) -> web::Json<Vec<AdminProvider>> {
    let config = &state.config;
    let mut list: Vec<AdminProvider> = config
        .oidc
        .iter()
        .map(|p| AdminProvider {
            id: p.id.clone(),
            kind: "oidc",
            display_name: p.display_name.clone(),
            issuer: Some(p.issuer.clone()),
            client_id: Some(p.client_id.clone()),
            registration_open: None,
            invitation_only: None,
            email_verification: None,
        })
        .collect();
    if let Some(gh) = &config.github {
        list.push(AdminProvider {
            id: "github".to_owned(),
            kind: "github",
            display_name: gh.display_name.clone(),
            issuer: Some(gh.authorize_url.to_string()),
            client_id: Some(gh.client_id.clone()),
            registration_open: None,
            invitation_only: None,
            email_verification: None,
        });
    }
    if config.local_accounts.enabled {
        list.push(AdminProvider {
            id: "local".to_owned(),
            kind: "local",
            display_name: "E-mail and password".to_owned(),
            issuer: None,
            client_id: None,
            registration_open: Some(config.local_accounts.registration_open),
            invitation_only: Some(config.local_accounts.invitation_only),
            email_verification: Some(config.smtp.is_some()),
        });
    }
    web::Json(list)
}

/// What the fleet would need: users by access level and the CPU and memory their
/// workspaces are allowed, plus the state of the platform's own dependencies. No user's
/// data.
#[derive(Debug, Serialize, ToSchema)]
pub struct Fleet {
    pub users_total: i64,
    pub users_disabled: i64,
    pub access_levels: Vec<FleetLevel>,
    /// CPU (millicores) and memory (MiB) if every enabled user's workspace ran at once.
    pub cpu_millicores_if_all_run: i64,
    pub memory_mib_if_all_run: i64,
    /// `ok` or why not, per dependency.
    pub dependencies: std::collections::BTreeMap<&'static str, String>,
    /// Workspace runtimes by lifecycle state.
    pub tenants: std::collections::BTreeMap<&'static str, i64>,
    /// Running workspaces at most in the default pool (seeded from `WEBSPLAT_MAX_RUNNING_TENANTS`).
    pub max_running_tenants: u32,
    /// Running workspaces at most per access level served by a pool of its own.
    pub max_running_per_level: std::collections::BTreeMap<String, u32>,
    /// Starts at once at most in the default pool (seeded from `WEBSPLAT_MAX_CONCURRENT_SPAWNS`).
    pub max_concurrent_spawns: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FleetLevel {
    pub name: String,
    pub users: i64,
    pub cpu_millicores: i32,
    pub memory_mib: i32,
    pub idle_timeout_seconds: i32,
}

/// The fleet at a glance, for operators.
#[utoipa::path(get, path = "/api/v1/admin/fleet", tag = "admin",
    responses((status = 200, body = Fleet), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn fleet(state: State) -> Result<web::Json<Fleet>, ApiError> {
    let mut conn = state.db.get().await?;
    let levels = access_levels::list(&mut conn).await?;
    let (users_total, users_disabled) = crate::users::counts(&mut conn).await?;
    let enabled_by_level = crate::users::enabled_by_access_level(&mut conn).await?;
    let mut cpu = 0i64;
    let mut memory = 0i64;
    for level in &levels {
        let n = enabled_by_level
            .iter()
            .find(|(name, _)| *name == level.level.name)
            .map_or(0, |(_, n)| *n);
        cpu += n * i64::from(level.level.cpu_millicores);
        memory += n * i64::from(level.level.memory_mib);
    }
    // The capacity is the pools' (sized live by operators): the default pool's, and each
    // other pool's for the access levels it serves.
    let pools = crate::pools::list(&mut conn).await?;
    let default_pool = pools
        .iter()
        .find(|p| p.pool.name == crate::pools::DEFAULT)
        .map(|p| p.pool.clone())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the default pool is missing")))?;
    let max_running_per_level = pools
        .iter()
        .filter(|p| p.pool.name != crate::pools::DEFAULT)
        .flat_map(|p| {
            let cap = u32::try_from(p.pool.max_running).unwrap_or(0);
            p.access_levels.iter().map(move |l| (l.clone(), cap))
        })
        .collect();
    let mut dependencies = std::collections::BTreeMap::new();
    for (name, result) in [
        ("postgresql", health::check_postgres(&state).await),
        ("redis", health::check_redis(&state).await),
        ("docker", health::check_orchestrator(&state).await),
    ] {
        dependencies.insert(name, result.err().unwrap_or_else(|| "ok".to_owned()));
    }
    Ok(web::Json(Fleet {
        users_total,
        users_disabled,
        access_levels: levels
            .into_iter()
            .map(|l| FleetLevel {
                name: l.level.name,
                users: l.users,
                cpu_millicores: l.level.cpu_millicores,
                memory_mib: l.level.memory_mib,
                idle_timeout_seconds: l.level.idle_timeout_seconds,
            })
            .collect(),
        cpu_millicores_if_all_run: cpu,
        memory_mib_if_all_run: memory,
        dependencies,
        tenants: crate::tenants::store::census(&mut conn)
            .await?
            .into_iter()
            .map(|(s, n)| (s.as_str(), n))
            .collect(),
        max_running_tenants: u32::try_from(default_pool.max_running).unwrap_or(0),
        max_running_per_level,
        max_concurrent_spawns: u32::try_from(default_pool.max_starting).unwrap_or(0),
    }))
}
