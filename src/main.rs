/// mimalloc: pitcrew allocates and frees many small buffers per case on every thread (HTTP
/// requests and answers, JSON); glibc's allocator spent a third of a run's CPU there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    pitcrew::cli::main()
}
