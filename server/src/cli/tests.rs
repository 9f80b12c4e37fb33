//! How the command line parses: every option where it was accepted before,
//! and each subcommand's help listing only what that subcommand reads.

use clap::{CommandFactory, Parser};

use super::*;

fn parse(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("assent-server").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn help(path: &[&str]) -> String {
    let mut cmd = Cli::command();
    cmd.build();
    let mut sub = &mut cmd;
    for name in path {
        sub = sub.find_subcommand_mut(name).expect("subcommand");
    }
    sub.render_long_help().to_string()
}

#[test]
fn the_command_line_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn common_options_go_before_or_after_the_subcommand() {
    for args in [
        &["--database-url", "sqlite://a.db", "user", "list"][..],
        &["user", "list", "--database-url", "sqlite://a.db"],
        &["user", "--database-url", "sqlite://a.db", "list"],
    ] {
        let cli = parse(args);
        assert_eq!(
            cli.common.database_url.as_deref(),
            Some("sqlite://a.db"),
            "{args:?}"
        );
    }
}

#[test]
fn server_options_before_the_subcommand_reach_serve_and_enroll() {
    let cli = parse(&["--poll-interval", "3", "--listen", "127.0.0.1:9", "serve"]);
    let Command::Serve(server) = cli.command else {
        panic!("serve")
    };
    assert_eq!(server.poll_interval, Some(3));
    assert_eq!(server.listen.map(|a| a.port()), Some(9));

    let cli = parse(&[
        "--issuer",
        "http://a.test",
        "enroll",
        "ticket",
        "--user",
        "u",
    ]);
    let Command::Enroll(EnrollCommand::Ticket(ticket)) = cli.command else {
        panic!("enroll ticket")
    };
    assert_eq!(ticket.issuer.as_deref(), Some("http://a.test"));
}

#[test]
fn the_option_nearest_the_end_wins() {
    let cli = parse(&[
        "--issuer",
        "http://a.test",
        "serve",
        "--issuer",
        "http://b.test",
    ]);
    let Command::Serve(server) = cli.command else {
        panic!("serve")
    };
    assert_eq!(server.issuer.as_deref(), Some("http://b.test"));
}

#[test]
fn server_options_after_an_operator_subcommand_are_still_accepted() {
    parse(&["user", "list", "--poll-interval", "3"]);
    parse(&["client", "delete", "x", "--listen", "127.0.0.1:1"]);
}

#[test]
fn operator_help_lists_only_what_the_command_reads() {
    let user_create = help(&["user", "create"]);
    for used in [
        "--sub",
        "--email",
        "--name",
        "--json",
        "--database-url",
        "--config",
        "--log",
    ] {
        assert!(user_create.contains(used), "{used} missing:\n{user_create}");
    }
    for unused in ["--listen", "--issuer", "--poll-interval", "--push-timeout"] {
        assert!(
            !user_create.contains(unused),
            "{unused} shown:\n{user_create}"
        );
    }

    let ticket = help(&["enroll", "ticket"]);
    assert!(ticket.contains("--issuer"), "{ticket}");
    assert!(
        !ticket.contains("--listen") && !ticket.contains("--poll-interval"),
        "{ticket}"
    );

    let serve = help(&["serve"]);
    for server_option in [
        "--listen",
        "--issuer",
        "--poll-interval",
        "--push-vapid-subject",
    ] {
        assert!(
            serve.contains(server_option),
            "{server_option} missing:\n{serve}"
        );
    }

    let top = help(&[]);
    assert!(!top.contains("--poll-interval"), "{top}");
}
