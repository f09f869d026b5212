//! The sign-in driver on the scripted sign-in: each way a login goes, and that no refusal
//! repeats what was typed.

use std::collections::VecDeque;

use super::*;
use crate::fake_login::FakeLogin;

const PHONE: &str = "+447700900123";
const CODE: &str = "40917";
const PASSWORD: &str = "correct horse battery";

/// Answers from a list, in order; records what was asked.
#[derive(Debug, Default)]
struct Typed {
    answers: VecDeque<String>,
    asked: Vec<String>,
}

impl Typed {
    fn new(answers: &[&str]) -> Self {
        Self {
            answers: answers.iter().map(|s| (*s).to_owned()).collect(),
            asked: Vec::new(),
        }
    }

    fn next(&mut self, what: String) -> std::io::Result<String> {
        self.asked.push(what);
        self.answers
            .pop_front()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
    }
}

impl Prompt for Typed {
    fn phone(&mut self) -> std::io::Result<String> {
        self.next("phone".to_owned())
    }

    fn code(&mut self, retry: bool) -> std::io::Result<String> {
        self.next(format!("code retry={retry}"))
    }

    fn password(&mut self, hint: Option<&str>, retry: bool) -> std::io::Result<String> {
        self.next(format!("password hint={hint:?} retry={retry}"))
    }
}

fn assert_no_secret(e: &LoginError) {
    let text = e.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    for secret in [PHONE, &PHONE[1..], CODE, PASSWORD, "7700900123"] {
        assert!(!text.contains(secret), "{text} repeats a secret");
    }
}

#[tokio::test]
async fn the_right_code_signs_in() {
    let fake = FakeLogin::new(PHONE, CODE, 7001, Some("ann"));
    let mut typed = Typed::new(&["+44 7700 900123", CODE]);
    let me = sign_in(&fake, &mut typed).await.unwrap();
    assert_eq!(me.id, 7001);
    assert_eq!(me.username.as_deref(), Some("ann"));
    assert_eq!(fake.codes_tried(), 1);
    assert_eq!(typed.asked, ["phone", "code retry=false"]);
    assert_eq!(fake.session_string().unwrap(), fake.session());
}

#[tokio::test]
async fn a_wrong_code_is_asked_again() {
    let fake = FakeLogin::new(PHONE, CODE, 7001, None);
    let mut typed = Typed::new(&[PHONE, "11111", CODE]);
    let me = sign_in(&fake, &mut typed).await.unwrap();
    assert_eq!(me.id, 7001);
    assert_eq!(fake.codes_tried(), 2);
    assert_eq!(
        typed.asked,
        ["phone", "code retry=false", "code retry=true"]
    );
}

#[tokio::test]
async fn three_wrong_codes_end_the_login() {
    let fake = FakeLogin::new(PHONE, CODE, 7001, None);
    let mut typed = Typed::new(&[PHONE, "1", "2", "3", CODE]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert_eq!(e, LoginError::CodeInvalid);
    assert_eq!(fake.codes_tried(), MAX_ATTEMPTS);
    assert!(fake.session_string().is_err());
    assert_no_secret(&e);
}

#[tokio::test]
async fn a_2fa_password_is_asked_with_its_hint_and_again_when_wrong() {
    let fake = FakeLogin::new(PHONE, CODE, 7002, None).with_password(PASSWORD, Some("horse"));
    let mut typed = Typed::new(&[PHONE, CODE, "wrong", PASSWORD]);
    let me = sign_in(&fake, &mut typed).await.unwrap();
    assert_eq!(me.id, 7002);
    assert_eq!(fake.passwords_tried(), 2);
    assert_eq!(
        typed.asked,
        [
            "phone",
            "code retry=false",
            "password hint=Some(\"horse\") retry=false",
            "password hint=Some(\"horse\") retry=true",
        ]
    );
}

#[tokio::test]
async fn a_wrong_password_three_times_ends_the_login() {
    let fake = FakeLogin::new(PHONE, CODE, 7002, None).with_password(PASSWORD, None);
    let mut typed = Typed::new(&[PHONE, CODE, "a", "b", "c"]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert_eq!(e, LoginError::PasswordInvalid);
    assert!(fake.session_string().is_err());
    assert_no_secret(&e);
}

#[tokio::test]
async fn an_unknown_phone_number_is_refused_before_any_code() {
    let fake = FakeLogin::new(PHONE, CODE, 7001, None);
    let mut typed = Typed::new(&["+15550100", CODE]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert_eq!(e, LoginError::PhoneInvalid);
    assert_eq!(fake.codes_tried(), 0);
    assert!(e.to_string().contains("PHONE_NUMBER_INVALID"), "{e}");
    assert!(!e.to_string().contains("15550100"), "{e}");
    // Not a phone number at all: refused without asking Telegram.
    let mut typed = Typed::new(&["ann@example.org"]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert_eq!(e, LoginError::PhoneInvalid);
    assert!(!e.to_string().contains("ann@"), "{e}");
}

#[tokio::test]
async fn a_flood_wait_says_how_long() {
    let fake = FakeLogin::new(PHONE, CODE, 7001, None).flood_wait(3600);
    let mut typed = Typed::new(&[PHONE, CODE]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert_eq!(e, LoginError::FloodWait { seconds: 3600 });
    assert!(e.to_string().contains("3600 seconds"), "{e}");
    assert_eq!(typed.asked, ["phone"]);
    assert_no_secret(&e);
}

#[tokio::test]
async fn an_expired_code_ends_the_login_without_asking_again() {
    let fake = FakeLogin::new(PHONE, CODE, 7001, None).code_expired();
    let mut typed = Typed::new(&[PHONE, CODE, CODE]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert_eq!(e, LoginError::CodeExpired);
    assert_eq!(fake.codes_tried(), 1);
    assert!(e.to_string().contains("PHONE_CODE_EXPIRED"), "{e}");
    assert_no_secret(&e);
}

#[tokio::test]
async fn no_input_is_a_clear_error() {
    let fake = FakeLogin::new(PHONE, CODE, 7001, None);
    let mut typed = Typed::new(&[PHONE]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert!(
        matches!(
            e,
            LoginError::Input {
                what: "login code",
                ..
            }
        ),
        "{e:?}"
    );
    let mut typed = Typed::new(&["  "]);
    let e = sign_in(&fake, &mut typed).await.unwrap_err();
    assert_eq!(e, LoginError::Empty("phone number"));
}

#[test]
fn telegram_errors_map_to_their_refusals() {
    let of = |name: &str, value| LoginError::of(&ApiError::rpc(400, name, value));
    assert_eq!(of("PHONE_NUMBER_BANNED", None), LoginError::PhoneBanned);
    assert_eq!(of("PHONE_NUMBER_UNOCCUPIED", None), LoginError::NoAccount);
    assert_eq!(
        of("FLOOD_WAIT", Some(12)),
        LoginError::FloodWait { seconds: 12 }
    );
    assert_eq!(
        of("API_ID_INVALID", None),
        LoginError::Refused("API_ID_INVALID".to_owned())
    );
    assert_eq!(
        LoginError::of(&ApiError::Io(std::io::ErrorKind::ConnectionRefused).not_sent()),
        LoginError::Unreachable("ConnectionRefused".to_owned())
    );
}
