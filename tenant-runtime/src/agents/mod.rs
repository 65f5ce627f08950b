//! Agents: named configurations of the AI that works on a user's sites — its role and
//! instructions, the model ("auto" or a named one), the tools it may use, how much it may do
//! on its own, and how creative it is. The generation pipeline runs them.

pub mod http;

use chrono::Utc;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::schema::agents;

pub const TOOLS: [&str; 3] = ["site_editing", "document_search", "web_search"];
pub const MAX_PER_PAGE: i64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Autonomy {
    /// Proposes changes; the user accepts or rejects each.
    Suggest,
    /// Applies small changes, asks before major ones.
    Ask,
    /// Applies its changes.
    Autonomous,
}

impl Autonomy {
    fn as_str(self) -> &'static str {
        match self {
            Autonomy::Suggest => "suggest",
            Autonomy::Ask => "ask",
            Autonomy::Autonomous => "autonomous",
        }
    }
}

/// What a client sends to create or replace an agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub instructions: String,
    #[serde(default = "auto")]
    pub model: String,
    #[serde(default)]
    pub tools: Vec<String>,
    #[serde(default = "suggest")]
    pub autonomy: Autonomy,
    #[serde(default = "half")]
    pub creativity: f64,
}

fn auto() -> String {
    "auto".to_owned()
}
fn suggest() -> Autonomy {
    Autonomy::Suggest
}
fn half() -> f64 {
    0.5
}

#[derive(Debug, Serialize)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub role: String,
    pub instructions: String,
    pub model: String,
    pub tools: Vec<String>,
    pub autonomy: Autonomy,
    pub creativity: f64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Serialize)]
pub struct AgentList {
    pub agents: Vec<Agent>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    f64,
    String,
    String,
);

fn from_row(r: Row) -> Result<Agent, ApiError> {
    let (id, name, role, instructions, model, tools, autonomy, creativity, created_at, updated_at) =
        r;
    Ok(Agent {
        id,
        name,
        role,
        instructions,
        model,
        tools: serde_json::from_str(&tools).map_err(ApiError::internal)?,
        autonomy: serde_json::from_value(serde_json::Value::String(autonomy))
            .map_err(ApiError::internal)?,
        creativity,
        created_at,
        updated_at,
    })
}

const COLUMNS: (
    agents::id,
    agents::name,
    agents::role,
    agents::instructions,
    agents::model,
    agents::tools,
    agents::autonomy,
    agents::creativity,
    agents::created_at,
    agents::updated_at,
) = (
    agents::id,
    agents::name,
    agents::role,
    agents::instructions,
    agents::model,
    agents::tools,
    agents::autonomy,
    agents::creativity,
    agents::created_at,
    agents::updated_at,
);

impl AgentInput {
    fn validate(mut self) -> Result<Self, ApiError> {
        let printable = |s: &str| !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
        self.name = self.name.trim().to_owned();
        if self.name.is_empty()
            || self.name.chars().count() > 64
            || self.name.chars().any(char::is_control)
        {
            return Err(ApiError::validation(
                "name",
                "the name must be 1 to 64 printable characters",
            ));
        }
        if self.role.chars().count() > 200 || !printable(&self.role) {
            return Err(ApiError::validation(
                "role",
                "the role must be at most 200 characters",
            ));
        }
        if self.instructions.chars().count() > 20_000 || !printable(&self.instructions) {
            return Err(ApiError::validation(
                "instructions",
                "the instructions must be at most 20000 characters",
            ));
        }
        let model_ok = self.model == "auto"
            || (!self.model.is_empty()
                && self.model.len() <= 100
                && self
                    .model
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._:/-".contains(c)));
        if !model_ok {
            return Err(ApiError::validation(
                "model",
                "the model must be \"auto\" or a model name like gpt-4o or claude-sonnet",
            ));
        }
        if let Some(bad) = self.tools.iter().find(|t| !TOOLS.contains(&t.as_str())) {
            return Err(ApiError::validation(
                "tools",
                format!("unknown tool {bad:?}; the tools are {}", TOOLS.join(", ")),
            ));
        }
        self.tools.sort();
        self.tools.dedup();
        if !self.creativity.is_finite() || !(0.0..=1.0).contains(&self.creativity) {
            return Err(ApiError::validation(
                "creativity",
                "creativity must be a number from 0 to 1",
            ));
        }
        Ok(self)
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("there is no agent {id:?}"))
}

fn name_taken(err: DieselError) -> ApiError {
    match err {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => ApiError::Conflict(
            "an agent with this name already exists; choose another name".to_owned(),
        ),
        other => other.into(),
    }
}

pub fn get(conn: &mut SqliteConnection, id: &str) -> Result<Agent, ApiError> {
    let row: Row = agents::table
        .find(id)
        .select(COLUMNS)
        .first(conn)
        .optional()?
        .ok_or_else(|| not_found(id))?;
    from_row(row)
}

pub fn create(conn: &mut SqliteConnection, input: AgentInput) -> Result<Agent, ApiError> {
    let input = input.validate()?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = Utc::now().to_rfc3339();
    diesel::insert_into(agents::table)
        .values((
            agents::id.eq(&id),
            agents::name.eq(&input.name),
            agents::role.eq(&input.role),
            agents::instructions.eq(&input.instructions),
            agents::model.eq(&input.model),
            agents::tools.eq(serde_json::to_string(&input.tools).map_err(ApiError::internal)?),
            agents::autonomy.eq(input.autonomy.as_str()),
            agents::creativity.eq(input.creativity),
            agents::created_at.eq(&now),
            agents::updated_at.eq(&now),
        ))
        .execute(conn)
        .map_err(name_taken)?;
    get(conn, &id)
}

pub fn replace(
    conn: &mut SqliteConnection,
    id: &str,
    input: AgentInput,
) -> Result<Agent, ApiError> {
    let input = input.validate()?;
    let updated = diesel::update(agents::table.find(id))
        .set((
            agents::name.eq(&input.name),
            agents::role.eq(&input.role),
            agents::instructions.eq(&input.instructions),
            agents::model.eq(&input.model),
            agents::tools.eq(serde_json::to_string(&input.tools).map_err(ApiError::internal)?),
            agents::autonomy.eq(input.autonomy.as_str()),
            agents::creativity.eq(input.creativity),
            agents::updated_at.eq(Utc::now().to_rfc3339()),
        ))
        .execute(conn)
        .map_err(name_taken)?;
    if updated == 0 {
        return Err(not_found(id));
    }
    get(conn, id)
}

pub fn delete(conn: &mut SqliteConnection, id: &str) -> Result<(), ApiError> {
    if diesel::delete(agents::table.find(id)).execute(conn)? == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub fn list(conn: &mut SqliteConnection, page: i64, per_page: i64) -> Result<AgentList, ApiError> {
    if page < 1 {
        return Err(ApiError::validation("page", "page numbers start at 1"));
    }
    if !(1..=MAX_PER_PAGE).contains(&per_page) {
        return Err(ApiError::validation(
            "per_page",
            format!("per_page must be 1 to {MAX_PER_PAGE}"),
        ));
    }
    let total: i64 = agents::table.count().get_result(conn)?;
    let agents = agents::table
        .order(agents::name.asc())
        .limit(per_page)
        .offset((page - 1) * per_page)
        .select(COLUMNS)
        .load::<Row>(conn)?
        .into_iter()
        .map(from_row)
        .collect::<Result<_, _>>()?;
    Ok(AgentList {
        agents,
        page,
        per_page,
        total,
    })
}
