import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdAuth
import NIOCore
import SyncNode

/// The context of a request to the web pages: the node's, plus who is asking. The middleware
/// below fill it in, in this order, on the route groups of `WebInterface.register(on:)`:
/// `VisitorMiddleware` (the language, for every page), `WebSessionAuthenticator` (the session of
/// the cookie, as hummingbird-auth's `identity`), `SignedInMiddleware` (no session: the login
/// page), `FormGate` (a write: this node's own form, within the size limit, with the session's
/// form token) and `RoleGate` (a write the user's role allows).
public struct WebRequestContext: ChildRequestContext, AuthRequestContext, RemoteAddressRequestContext {
    public typealias ParentContext = NodeRequestContext
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    /// The signed-in user's session (hummingbird-auth's authenticated identity).
    public var identity: WebSession?
    /// What the node keeps of the session's token (its SHA-256), for a write (`FormGate`).
    var tokenHash: String?
    var language: Language = .zh
    /// The language came from `?lang=`: the answer sets the language cookie.
    var setLanguage = false
    /// A write's form, in the order sent (`FormGate`).
    var form = WebForm(fields: [])

    public init(context: NodeRequestContext) {
        coreContext = context.coreContext
        remoteAddress = context.remoteAddress
    }

    /// Who is asking, as the page renderers take it.
    var visitor: WebInterface.Visitor {
        WebInterface.Visitor(session: identity, tokenHash: tokenHash, language: language, setLanguage: setLanguage)
    }

    /// A write admitted by the gates: its session, form and visitor.
    var write: WebInterface.Write {
        get throws {
            guard let identity else { throw HTTPError(.unauthorized) }
            return WebInterface.Write(session: identity, tokenHash: tokenHash, visitor: visitor, form: form)
        }
    }
}

/// An `application/x-www-form-urlencoded` body: its fields in the order sent (the entry forms'
/// fields come from the plan, so they are read by name), and its text for the forms whose fields
/// are fixed, decoded as `Decodable` values by Hummingbird's `URLEncodedFormDecoder`.
struct WebForm: Sendable {
    var fields: [(String, String)]
    var text = ""

    func value(_ name: String) -> String? { fields.first { $0.0 == name }?.1 }

    /// The form as a `Decodable` value; a form no browser sends (a key twice, brackets, a broken
    /// percent escape) is a 400 page rather than a guess at which value was meant.
    func decode<T: Decodable>(_ type: T.Type) throws(WebInterface.FormError) -> T {
        do {
            return try URLEncodedFormDecoder().decode(type, from: text)
        } catch {
            throw WebInterface.FormError(status: .badRequest, label: "badForm")
        }
    }

    /// Reads a form body up to `WebInterface.maxFormBytes`.
    static func read(_ request: Request) async throws -> WebForm {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > WebInterface.maxFormBytes {
            throw WebInterface.FormError(status: .contentTooLarge, label: "tooLarge")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: WebInterface.maxFormBytes)
        } catch is NIOTooManyBytesError {
            throw WebInterface.FormError(status: .contentTooLarge, label: "tooLarge")
        }
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        let fields = text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String { String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
        return WebForm(fields: fields, text: text)
    }
}

/// The visitor's language: `?lang=`, the language cookie, the browser's preference.
struct VisitorMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let visitor = WebInterface.anonymous(request)
        context.language = visitor.language
        context.setLanguage = visitor.setLanguage
        return try await next(request, context)
    }
}

/// The session of the request's cookie, if it is live: a SQLite read, off the cooperative pool.
struct WebSessionAuthenticator: AuthenticatorMiddleware {
    typealias Context = WebRequestContext
    let store: Store

    func authenticate(request: Request, context: Context) async throws -> WebSession? {
        guard let hash = WebInterface.sessionTokenHash(request) else { return nil }
        let store = store
        return try await BlockingWork.run { try store.webSession(tokenHash: hash, now: store.nowMillis()) }
    }
}

/// Pages for signed-in users: without a session, a page is answered with the login page (a
/// redirect that comes back to it), a write with 401 and a link to log in.
struct SignedInMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext
    let web: WebInterface

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard context.identity == nil else { return try await next(request, context) }
        if request.method == .get || request.method == .head {
            return WebInterface.redirect(to: "/login?next=" + WebInterface.encode(request.uri.path), status: .seeOther)
        }
        return web.refusal(context.visitor, .unauthorized, "expired", link: "/login")
    }
}

/// A write must come from this node's own pages (`Origin`, else `Referer`), within the size
/// limit, and carry the session's form token; its form is then in the context.
struct FormGate: RouterMiddleware {
    typealias Context = WebRequestContext
    let web: WebInterface

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post else { return try await next(request, context) }
        let visitor = context.visitor
        guard web.sameOrigin(request) else { return web.refusal(visitor, .forbidden, "staleForm") }
        let form: WebForm
        do {
            form = try await WebForm.read(request)
        } catch let error as WebInterface.FormError {
            return web.refusal(visitor, error.status, error.label)
        }
        guard let session = context.identity, let token = form.value("csrf"), WebInterface.constantTimeEqual(token, session.csrf) else {
            return web.refusal(visitor, .forbidden, "staleForm")
        }
        var context = context
        context.form = form
        context.tokenHash = WebInterface.sessionTokenHash(request)
        return try await next(request, context)
    }
}

/// A write only a role that `may` do it can make (403 otherwise).
struct RoleGate: RouterMiddleware {
    typealias Context = WebRequestContext
    let web: WebInterface
    let may: @Sendable (WebUser.Role) -> Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let role = context.identity?.user.role, may(role) else { return web.refusal(context.visitor, .forbidden, "forbidden") }
        return try await next(request, context)
    }
}
