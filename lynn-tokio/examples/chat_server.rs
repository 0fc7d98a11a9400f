//! Chat server with rooms.
//!
//! - method 1: join the room named by the body (leaving the previous one)
//! - method 2: say the body to your room (everyone else in it receives method 2)
//! - method 3: broadcast the body to everyone (method 3)
//!
//! `cargo run -p lynn-tokio --example chat_server -- --addr 127.0.0.1:9178`

use std::collections::HashMap;
use std::sync::Mutex;

use lynn_tokio::{ConnectionId, Context, Reply, Server, ServerConfig, Target};

/// Which room each connection is in.
#[derive(Default)]
struct Rooms(Mutex<HashMap<ConnectionId, String>>);

type Ctx = Context<Rooms>;

async fn join(ctx: Ctx) -> Result<Reply, String> {
    let room = String::from_utf8(ctx.body().to_vec()).map_err(|e| e.to_string())?;
    let previous = ctx
        .state()
        .0
        .lock()
        .map_err(|e| e.to_string())?
        .insert(ctx.id(), room.clone());
    if let Some(old) = previous {
        ctx.server().leave(&old, ctx.id());
    }
    ctx.server()
        .join(&room, ctx.id())
        .map_err(|e| e.to_string())?;
    Ok(ctx.reply(format!("joined {room}")))
}

async fn say(ctx: Ctx) -> Result<Reply, String> {
    let room = ctx
        .state()
        .0
        .lock()
        .map_err(|e| e.to_string())?
        .get(&ctx.id())
        .cloned();
    let Some(room) = room else {
        return Ok(ctx.reply("join a room first"));
    };
    let line = format!("{}: {}", ctx.id(), String::from_utf8_lossy(ctx.body()));
    Ok(Reply::to(Target::Group(room), 2, line))
}

async fn shout(ctx: Ctx) -> Reply {
    Reply::to(Target::All, 3, ctx.body().clone())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "127.0.0.1:9178".into());
    let server = Server::builder(ServerConfig::builder().addr(addr).build()?)
        .state(Rooms::default())
        .route(1, join)
        .route(2, say)
        .route(3, shout)
        .bind()
        .await?;
    println!("chat server listening on {}", server.local_addr());
    server.serve().await?;
    Ok(())
}
