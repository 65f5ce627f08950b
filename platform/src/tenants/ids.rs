//! The names of tenants, parsed once: a [`TenantId`], a workspace [`Slug`] and a
//! [`PoolName`]. A value that exists is valid; reading one from PostgreSQL or Redis that is
//! not is an error, never a silent default. Each is stored and serialized exactly as the
//! plain value it wraps (a uuid or a string), so no column or wire format changes.

use std::fmt;
use std::ops::Deref;

use diesel::deserialize::{FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{Output, ToSql};
use diesel::sql_types;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A tenant's id: one container's life, a row of `tenants`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AsExpression, FromSqlRow,
)]
#[diesel(sql_type = sql_types::Uuid)]
#[serde(transparent)]
pub struct TenantId(pub Uuid);

impl TenantId {
    pub fn new() -> Self {
        TenantId(Uuid::new_v4())
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for TenantId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TenantId)
    }
}

impl ToSql<sql_types::Uuid, Pg> for TenantId {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
        <Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(&self.0, out)
    }
}

impl FromSql<sql_types::Uuid, Pg> for TenantId {
    fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
        <Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(bytes).map(TenantId)
    }
}

/// Text newtypes: parsed on the way in from anywhere (PostgreSQL, JSON), derefs to `str`.
macro_rules! parsed_text {
    ($name:ident) => {
        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(raw: String) -> Result<Self, String> {
                $name::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl ToSql<sql_types::Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> diesel::serialize::Result {
                <str as ToSql<sql_types::Text, Pg>>::to_sql(&self.0, out)
            }
        }

        impl FromSql<sql_types::Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let raw = <String as FromSql<sql_types::Text, Pg>>::from_sql(bytes)?;
                Ok($name::parse(&raw)?)
            }
        }
    };
}

/// A workspace's host label, `{slug}.{workspace domain}`: 1 to 63 lowercase letters,
/// digits and dashes, neither starting nor ending with a dash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, AsExpression, FromSqlRow)]
#[diesel(sql_type = sql_types::Text)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Slug, String> {
        let valid = (1..=63).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !raw.starts_with('-')
            && !raw.ends_with('-');
        if valid {
            Ok(Slug(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a workspace slug"))
        }
    }
}

parsed_text!(Slug);

/// The pool a tenant is sized from: its owner's access level's name, 1 to 32 lowercase
/// letters, digits, `-` or `_`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, AsExpression, FromSqlRow)]
#[diesel(sql_type = sql_types::Text)]
#[serde(try_from = "String", into = "String")]
pub struct PoolName(String);

impl PoolName {
    pub fn parse(raw: &str) -> Result<PoolName, String> {
        let valid = (1..=32).contains(&raw.len())
            && raw.starts_with(|c: char| c.is_ascii_lowercase())
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid {
            Ok(PoolName(raw.to_owned()))
        } else {
            Err(format!("{raw:?} is not a pool (access level) name"))
        }
    }
}

parsed_text!(PoolName);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_host_labels_and_nothing_else() {
        for ok in ["alice-1a2b", "a", "ws-0123456789abcdef"] {
            assert_eq!(Slug::parse(ok).map(|s| s.to_string()), Ok(ok.to_owned()));
        }
        for bad in ["", "-a", "a-", "Alice", "al_ice", "a.b", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pools_are_access_level_names() {
        assert!(PoolName::parse("free").is_ok());
        assert!(PoolName::parse("pro_2-x").is_ok());
        for bad in ["", "2fast", "Free", "a b", &"a".repeat(33)] {
            assert!(PoolName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn they_serialize_as_the_plain_value_and_refuse_bad_ones() {
        let slug: Slug = serde_json::from_str("\"alice-1\"").expect("a slug");
        assert_eq!(serde_json::to_string(&slug).expect("json"), "\"alice-1\"");
        assert!(serde_json::from_str::<Slug>("\"Not A Slug\"").is_err());
        let id = TenantId::new();
        assert_eq!(
            serde_json::to_string(&id).expect("json"),
            format!("\"{}\"", id.0)
        );
    }
}
