//! casbin's rules in PostgreSQL, through diesel_async: the table `casbin_rule` in the layout
//! casbin adapters share. The platform changes rules in its own transactions (see
//! `roles.rs`) and then asks every replica to reload; this adapter is how an enforcer reads
//! them, and implements casbin's write calls too, so casbin's management API stays usable.
//!
//! `seed_defaults` puts the rules of `policies/policy.csv` in once each; a rule seeded
//! before is never put back, so what an admin removed stays removed.

use async_trait::async_trait;
use casbin::error::AdapterError;
use casbin::{Adapter, Filter, Model};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::db;
use crate::schema::{casbin_rule, policy_seeds};

/// The default policy, compiled in so a replica never depends on a file at run time.
pub const DEFAULT_POLICY: &str = include_str!("../../../policies/policy.csv");
/// The casbin model.
pub const MODEL: &str = include_str!("../../../policies/model.conf");

/// One rule: its type (`p` or `g`) and up to six values.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = casbin_rule, check_for_backend(diesel::pg::Pg))]
pub struct Rule {
    pub ptype: String,
    pub v0: String,
    pub v1: String,
    pub v2: String,
    pub v3: String,
    pub v4: String,
    pub v5: String,
}

impl Rule {
    pub fn new(ptype: &str, values: &[impl AsRef<str>]) -> Self {
        let v = |i: usize| {
            values
                .get(i)
                .map(|s| s.as_ref().trim().to_owned())
                .unwrap_or_default()
        };
        Rule {
            ptype: ptype.to_owned(),
            v0: v(0),
            v1: v(1),
            v2: v(2),
            v3: v(3),
            v4: v(4),
            v5: v(5),
        }
    }

    /// The values up to the last non-empty one, as casbin holds them.
    pub fn fields(&self) -> Vec<String> {
        let mut all = vec![
            self.v0.clone(),
            self.v1.clone(),
            self.v2.clone(),
            self.v3.clone(),
            self.v4.clone(),
            self.v5.clone(),
        ];
        while all.last().is_some_and(String::is_empty) {
            all.pop();
        }
        all
    }

    /// The rule as a line of a casbin CSV file.
    pub fn line(&self) -> String {
        let mut parts = vec![self.ptype.clone()];
        parts.extend(self.fields());
        parts.join(", ")
    }
}

/// The rules of a casbin CSV text (comments and blank lines skipped).
pub fn parse_csv(text: &str) -> Vec<Rule> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let parts: Vec<&str> = l.split(',').map(str::trim).collect();
            let (ptype, values) = parts.split_first()?;
            Some(Rule::new(ptype, values))
        })
        .collect()
}

pub async fn load_all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Rule>> {
    casbin_rule::table
        .order(casbin_rule::id.asc())
        .select(Rule::as_select())
        .load(conn)
        .await
}

/// Inserts the rules; those already present are left as they are. Returns how many were new.
pub async fn insert(conn: &mut AsyncPgConnection, rules: &[Rule]) -> QueryResult<usize> {
    diesel::insert_into(casbin_rule::table)
        .values(rules)
        .on_conflict_do_nothing()
        .execute(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, rule: &Rule) -> QueryResult<usize> {
    diesel::delete(
        casbin_rule::table
            .filter(casbin_rule::ptype.eq(&rule.ptype))
            .filter(casbin_rule::v0.eq(&rule.v0))
            .filter(casbin_rule::v1.eq(&rule.v1))
            .filter(casbin_rule::v2.eq(&rule.v2))
            .filter(casbin_rule::v3.eq(&rule.v3))
            .filter(casbin_rule::v4.eq(&rule.v4))
            .filter(casbin_rule::v5.eq(&rule.v5)),
    )
    .execute(conn)
    .await
}

/// Seeds the default policy: every rule never seeded before is inserted and remembered.
/// Returns how many rules were added. Safe to run on every start of every replica at once.
pub async fn seed_defaults(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    let defaults = parse_csv(DEFAULT_POLICY);
    conn.transaction(async move |conn| {
        let mut added = 0;
        for rule in &defaults {
            let first_time = diesel::insert_into(policy_seeds::table)
                .values(policy_seeds::rule.eq(rule.line()))
                .on_conflict_do_nothing()
                .execute(conn)
                .await?
                == 1;
            if first_time {
                added += insert(conn, std::slice::from_ref(rule)).await?;
            }
        }
        Ok(added)
    })
    .await
}

/// casbin's view of `casbin_rule`.
pub struct PgAdapter {
    pool: db::Pool,
}

impl PgAdapter {
    pub fn new(pool: db::Pool) -> Self {
        PgAdapter { pool }
    }

    async fn conn(&self) -> casbin::Result<db::Conn> {
        self.pool.get().await.map_err(adapter_error)
    }
}

fn adapter_error(e: impl std::error::Error + Send + Sync + 'static) -> casbin::Error {
    casbin::Error::AdapterError(AdapterError(Box::new(e)))
}

fn load_into(m: &mut dyn Model, rule: &Rule) {
    let sec = if rule.ptype.starts_with('g') {
        "g"
    } else {
        "p"
    };
    if let Some(ast) = m
        .get_mut_model()
        .get_mut(sec)
        .and_then(|t| t.get_mut(&rule.ptype))
    {
        ast.get_mut_policy().insert(rule.fields());
    }
}

#[async_trait]
impl Adapter for PgAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        let mut conn = self.conn().await?;
        for rule in load_all(&mut conn).await.map_err(adapter_error)? {
            load_into(m, &rule);
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(
        &mut self,
        m: &mut dyn Model,
        f: Filter<'a>,
    ) -> casbin::Result<()> {
        let mut conn = self.conn().await?;
        for rule in load_all(&mut conn).await.map_err(adapter_error)? {
            let filter = if rule.ptype.starts_with('g') {
                &f.g
            } else {
                &f.p
            };
            let values = rule.fields();
            let keep = filter.iter().enumerate().all(|(i, want)| {
                want.is_empty() || values.get(i).map(String::as_str) == Some(*want)
            });
            if keep {
                load_into(m, &rule);
            }
        }
        Ok(())
    }

    async fn save_policy(&mut self, m: &mut dyn Model) -> casbin::Result<()> {
        let mut rules = Vec::new();
        for sec in ["p", "g"] {
            if let Some(asts) = m.get_model().get(sec) {
                for (ptype, ast) in asts {
                    rules.extend(ast.get_policy().iter().map(|v| Rule::new(ptype, v)));
                }
            }
        }
        let mut conn = self.conn().await?;
        conn.transaction(async move |conn| {
            diesel::delete(casbin_rule::table).execute(conn).await?;
            insert(conn, &rules).await
        })
        .await
        .map_err(adapter_error)?;
        Ok(())
    }

    async fn clear_policy(&mut self) -> casbin::Result<()> {
        let mut conn = self.conn().await?;
        diesel::delete(casbin_rule::table)
            .execute(&mut conn)
            .await
            .map_err(adapter_error)?;
        Ok(())
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.add_policies(_sec, ptype, vec![rule]).await
    }

    async fn add_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let rules: Vec<Rule> = rules.iter().map(|r| Rule::new(ptype, r)).collect();
        let mut conn = self.conn().await?;
        let added = insert(&mut conn, &rules).await.map_err(adapter_error)?;
        Ok(added > 0)
    }

    async fn remove_policy(
        &mut self,
        sec: &str,
        ptype: &str,
        rule: Vec<String>,
    ) -> casbin::Result<bool> {
        self.remove_policies(sec, ptype, vec![rule]).await
    }

    async fn remove_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> casbin::Result<bool> {
        let rules: Vec<Rule> = rules.iter().map(|r| Rule::new(ptype, r)).collect();
        let mut conn = self.conn().await?;
        let removed = conn
            .transaction(async move |conn| {
                let mut n = 0;
                for rule in &rules {
                    n += delete(conn, rule).await?;
                }
                Ok::<_, diesel::result::Error>(n)
            })
            .await
            .map_err(adapter_error)?;
        Ok(removed > 0)
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        field_index: usize,
        field_values: Vec<String>,
    ) -> casbin::Result<bool> {
        let mut conn = self.conn().await?;
        let rules: Vec<Rule> = casbin_rule::table
            .filter(casbin_rule::ptype.eq(ptype))
            .select(Rule::as_select())
            .load(&mut conn)
            .await
            .map_err(adapter_error)?;
        let matching: Vec<Vec<String>> = rules
            .into_iter()
            .map(|r| r.fields())
            .filter(|values| {
                field_values.iter().enumerate().all(|(i, want)| {
                    want.is_empty()
                        || values.get(field_index + i).map(String::as_str) == Some(want.as_str())
                })
            })
            .collect();
        if matching.is_empty() {
            return Ok(false);
        }
        self.remove_policies(_sec, ptype, matching).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_parses_into_rules_with_four_values_or_two() {
        let rules = parse_csv(DEFAULT_POLICY);
        assert!(rules.len() > 20);
        for rule in rules {
            let n = rule.fields().len();
            match rule.ptype.as_str() {
                "p" => assert_eq!(n, 4, "{}", rule.line()),
                "g" => assert_eq!(n, 2, "{}", rule.line()),
                other => panic!("unknown rule type {other}"),
            }
        }
    }

    #[test]
    fn a_rule_round_trips_through_its_line() {
        let rule = Rule::new("p", &["member", "/api/v1/me", "GET", "own"]);
        assert_eq!(rule.line(), "p, member, /api/v1/me, GET, own");
        assert_eq!(parse_csv(&rule.line()), vec![rule]);
    }
}
