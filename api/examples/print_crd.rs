fn main() {
    match muster_exchange_api::crd::crd_yaml() {
        Ok(y) => print!("{y}"),
        Err(e) => eprintln!("{e}"),
    }
}
