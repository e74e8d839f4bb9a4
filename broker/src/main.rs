fn main() {
    eprintln!("weir: the broker server is not built yet (see issue 3)");
    std::process::exit(2);
}
