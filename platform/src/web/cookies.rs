//! The platform's cookies: the session cookie and the short-lived login-binding cookie.
//! Both are `HttpOnly`, `SameSite=Lax`, path `/`, and — when the public URL is https —
//! `Secure` with the `__Host-` prefix, so no subdomain (such as a tenant's workspace
//! origin) can set or read them.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::login_state::LOGIN_STATE_TTL;
use crate::config::PublicUrl;

#[derive(Clone, Copy)]
pub struct CookieNames {
    pub session: &'static str,
    pub login: &'static str,
    secure: bool,
}

impl CookieNames {
    pub fn for_url(url: &PublicUrl) -> Self {
        if url.is_https() {
            CookieNames {
                session: "__Host-websplat_session",
                login: "__Host-websplat_login",
                secure: true,
            }
        } else {
            CookieNames {
                session: "websplat_session",
                login: "websplat_login",
                secure: false,
            }
        }
    }

    fn build(&self, name: &'static str, value: String, max_age: CookieDuration) -> Cookie<'static> {
        Cookie::build(name, value)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(max_age)
            .finish()
    }

    pub fn session(&self, token: &SecretString, max_age: std::time::Duration) -> Cookie<'static> {
        let secs = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        self.build(
            self.session,
            token.expose_secret().to_owned(),
            CookieDuration::seconds(secs),
        )
    }

    pub fn login(&self, binding: &str) -> Cookie<'static> {
        self.build(
            self.login,
            binding.to_owned(),
            CookieDuration::seconds(LOGIN_STATE_TTL.as_secs() as i64),
        )
    }

    /// A cookie that tells the browser to forget `name`.
    pub fn removal(&self, name: &'static str) -> Cookie<'static> {
        self.build(name, String::new(), CookieDuration::ZERO)
    }

    pub fn session_token(&self, req: &HttpRequest) -> Option<SecretString> {
        req.cookie(self.session)
            .map(|c| SecretString::from(c.value().to_owned()))
            .filter(|t| !t.expose_secret().is_empty())
    }
}
