//! `/ws`: a WebSocket that carries the workspace's live events (job progress today) and
//! keeps itself alive: the server pings every 10 seconds and closes a connection that has
//! not answered for 30; a client may send the text `ping` and gets `{"type":"pong"}`.

use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::Message;
use tokio::sync::broadcast::error::RecvError;

use crate::jobs::Jobs;

const PING_EVERY: Duration = Duration::from_secs(10);
const SILENCE_LIMIT: Duration = Duration::from_secs(30);
/// The largest message a client may send.
const MAX_FRAME: usize = 64 * 1024;

pub async fn connect(
    req: HttpRequest,
    body: web::Payload,
    jobs: web::Data<Jobs>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, mut session, stream) = actix_ws::handle(&req, body)?;
    let mut stream = stream.max_frame_size(MAX_FRAME);
    let mut events = jobs.subscribe();
    actix_web::rt::spawn(async move {
        let mut last_heard = Instant::now();
        let mut ticker = tokio::time::interval(PING_EVERY);
        let reason = loop {
            tokio::select! {
                message = stream.recv() => match message {
                    Some(Ok(Message::Ping(bytes))) => {
                        last_heard = Instant::now();
                        if session.pong(&bytes).await.is_err() { break None; }
                    }
                    Some(Ok(Message::Pong(_))) => last_heard = Instant::now(),
                    Some(Ok(Message::Text(text))) => {
                        last_heard = Instant::now();
                        let answer = if text.trim() == "ping" {
                            r#"{"type":"pong"}"#.to_owned()
                        } else {
                            r#"{"type":"error","message":"send \"ping\"; events arrive by themselves"}"#.to_owned()
                        };
                        if session.text(answer).await.is_err() { break None; }
                    }
                    Some(Ok(Message::Close(reason))) => break reason,
                    Some(Ok(_)) => last_heard = Instant::now(),
                    Some(Err(e)) => {
                        tracing::info!(error = %e, "websocket protocol error");
                        break None;
                    }
                    None => break None,
                },
                event = events.recv() => match event {
                    Ok(job) => {
                        let text = serde_json::json!({ "type": "job", "job": job }).to_string();
                        if session.text(text).await.is_err() { break None; }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let text = serde_json::json!({ "type": "lagged", "missed": missed }).to_string();
                        if session.text(text).await.is_err() { break None; }
                    }
                    Err(RecvError::Closed) => break None,
                },
                _ = ticker.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        tracing::info!("closing a silent websocket");
                        break None;
                    }
                    if session.ping(b"").await.is_err() { break None; }
                }
            }
        };
        let _ = session.close(reason).await;
    });
    Ok(response)
}
