//! weir-bench: not built yet (issue 4).

fn main() {
    eprintln!("weir-bench: not built yet");
    std::process::exit(2);
}
