//! HTTP/1.1 for the admin listener: one request per connection, parsed by
//! `httparse`, answered with `Connection: close`. Pure (no I/O).

/// Headers a request may carry.
const HEADERS_MAX: usize = 32;

/// A parsed request: method, path and query pairs (percent-decoding is not
/// needed for the names and values the endpoints take).
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
}

/// Parses a request head. Ok(None): incomplete so far; Err: the response
/// to give (400, or 413 for a request with a body).
pub fn parse_request(bytes: &[u8]) -> Result<Option<Request>, Response> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let has_body = request.headers.iter().any(|h| {
                (h.name.eq_ignore_ascii_case("content-length") && h.value != b"0")
                    || h.name.eq_ignore_ascii_case("transfer-encoding")
            });
            if has_body {
                return Err(Response::text(413, "requests carry no body here\n"));
            }
            let method = request.method.unwrap_or_default().to_string();
            let target = request.path.unwrap_or_default();
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let query = query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (name.to_string(), value.to_string())
                })
                .collect();
            Ok(Some(Request {
                method,
                path: path.to_string(),
                query,
            }))
        }
        Err(httparse::Error::TooManyHeaders) => Err(Response::text(431, "too many headers\n")),
        Err(e) => Err(Response::text(400, &format!("bad request: {e}\n"))),
    }
}

/// A response to encode.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    pub body: Vec<u8>,
    /// HEAD: the length of the body that a GET would get, and no body.
    head_only: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
            head_only: false,
        }
    }

    pub fn text(status: u16, text: &str) -> Response {
        Response::new(status, "text/plain; charset=utf-8", text.as_bytes().to_vec())
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Response {
        self.headers.push((name, value));
        self
    }

    pub fn without_body(mut self) -> Response {
        self.head_only = true;
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_parsed_once_its_head_is_complete() {
        assert_eq!(
            parse_request(b"GET /v1/latency?api=Produce&reset=tr").unwrap(),
            None
        );
        let request = parse_request(b"GET /v1/latency?api=Produce&reset=true HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(request.method, "GET");
        assert_eq!(request.path, "/v1/latency");
        assert_eq!(
            request.query,
            vec![("api".into(), "Produce".into()), ("reset".into(), "true".into())]
        );
    }

    #[test]
    fn garbage_bodies_and_header_floods_get_4xx() {
        assert_eq!(
            parse_request(b"\x16\x03\x01\x00\xa5\r\n\r\n").unwrap_err().status,
            400
        );
        let body = b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_request(body).unwrap_err().status, 413);
        let mut flood = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..40 {
            flood.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        flood.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&flood).unwrap_err().status, 431);
    }

    #[test]
    fn head_responses_say_the_length_without_the_body() {
        let response = Response::text(200, "ok\n").without_body().encode();
        let text = String::from_utf8(response).unwrap();
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }
}
