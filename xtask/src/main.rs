//! Project automation: `cargo xtask <task>`. See `cargo xtask help`.

fn main() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        _ => {
            println!("usage: cargo xtask <task>");
            Ok(())
        }
    }
}
