//! The fanout baseline: a bare tokio + tungstenite WebSocket server that sends the same bytes
//! (one real viewport `next` message) to every connected client each tick through a
//! `tokio::sync::broadcast` channel. Runs as a child process of the bench
//! (`--broadcast-server ADDR|TICK_MS|PAYLOAD_FILE`) so its memory per connection can be read
//! apart from the clients'.

use std::time::Duration;

use anyhow::{Result, anyhow};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

pub async fn serve(spec: &str) -> Result<()> {
    let mut parts = spec.splitn(3, '|');
    let (Some(addr), Some(tick), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(anyhow!("--broadcast-server ADDR|TICK_MS|PAYLOAD_FILE"));
    };
    let tick = Duration::from_millis(tick.parse()?);
    let payload = Utf8Bytes::from(std::fs::read_to_string(path)?);
    let listener = TcpListener::bind(addr).await?;
    let (tx, _) = broadcast::channel::<Utf8Bytes>(64);
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            loop {
                every.tick().await;
                if tx.receiver_count() > 0 {
                    let _ = tx.send(payload.clone());
                }
            }
        });
    }
    println!("listening");
    loop {
        let (stream, _) = listener.accept().await?;
        let mut rx = tx.subscribe();
        tokio::spawn(async move {
            // The same small buffers as the API's WebSocket (api/src/http.rs).
            let config = WebSocketConfig::default()
                .read_buffer_size(8 * 1024)
                .write_buffer_size(8 * 1024);
            let Ok(ws) = tokio_tungstenite::accept_async_with_config(stream, Some(config)).await
            else {
                return;
            };
            let (mut sink, mut source) = ws.split();
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Ok(text) => {
                            if sink.send(Message::Text(text)).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    incoming = source.next() => match incoming {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        Some(Ok(_)) => {}
                    },
                }
            }
        });
    }
}
