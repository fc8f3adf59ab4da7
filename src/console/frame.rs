//! The frame every console page shares: head, navigation, logout.

use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

/// A whole page: `logout` (the session's CSRF token, when there is a login) adds the logout button.
pub fn layout(title: &str, logout: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · callrelay" }
                link rel="stylesheet" href="/static/console.css";
                script src="/static/console.js" defer {}
            }
            body {
                nav {
                    strong { "callrelay" }
                    a href="/" { "Deliveries" }
                    a href="/playground" { "Playground" }
                    a href="/routes" { "Route tester" }
                    a href="/dead-letters" { "Dead letters" }
                    @if let Some(csrf) = logout {
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

pub fn html_page(markup: Markup) -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(markup.into_string())
}
