//! weir-tune: not built yet (issue 4).

fn main() {
    eprintln!("weir-tune: not built yet");
    std::process::exit(2);
}
