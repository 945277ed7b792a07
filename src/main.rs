fn main() -> std::process::ExitCode {
    pitcrew::cli::main()
}
