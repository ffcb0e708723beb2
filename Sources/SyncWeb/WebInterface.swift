import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import Logging
import Mustache
import NIOCore
import SyncNode
import SyncProtocol

/// The node's web pages, beside the sync API under `/v1/`: HQ's dashboard (`/`), forms that record
/// the programme's work (`/entry`), this node's own work with its sync state (`/mine`), the
/// conflicts to review (`/conflicts`) and the report downloads (`/export/...`), behind a login.
///
/// Users are local to the node (`syncnode user add`). A session is a random token in an HttpOnly,
/// SameSite=Strict cookie; the node keeps only its SHA-256. Every write carries the session's
/// form token and goes through the same library call as the CLI's, so the log, the signatures
/// and the policy are the same. The sync API never reads the cookie, and these pages never read
/// a request signature.
public struct WebInterface: NodeRoutes {
    public let store: Store
    /// Set the cookie's `Secure` flag (the node serves HTTPS).
    public let secureCookies: Bool
    /// How long a session lasts.
    public let sessionSeconds: UInt64
    let limiter: LoginLimiter
    let templates: MustacheLibrary
    let logger: Logger

    /// Largest form body accepted (413 beyond it).
    public static let maxFormBytes = 64 * 1024
    static let cookieName = "syncnode_session"
    static let languageCookie = "syncnode_lang"

    public init(store: Store, secureCookies: Bool = false, sessionSeconds: UInt64 = 8 * 3600, logger: Logger = Logger(label: "syncnode.web")) {
        self.store = store
        self.secureCookies = secureCookies
        self.sessionSeconds = sessionSeconds
        self.limiter = LoginLimiter(clock: { [store] in store.nowMillis() })
        self.templates = Self.library
        self.logger = logger
    }

    /// The templates, parsed once per process.
    static let library: MustacheLibrary = {
        var library = MustacheLibrary()
        let sources: [(String, [UInt8])] = [
            ("layout", PackageResources.layout_mustache), ("dashboard", PackageResources.dashboard_mustache),
            ("login", PackageResources.login_mustache), ("entry", PackageResources.entry_mustache), ("form", PackageResources.form_mustache),
            ("mine", PackageResources.mine_mustache), ("conflicts", PackageResources.conflicts_mustache),
            ("message", PackageResources.message_mustache), ("table", PackageResources.table_mustache),
            ("password", PackageResources.password_mustache), ("report", PackageResources.report_mustache),
            ("submissions", PackageResources.submissions_mustache), ("record", PackageResources.record_mustache),
        ]
        for (name, bytes) in sources {
            do {
                try library.register(String(decoding: bytes, as: UTF8.self), named: name)
            } catch {
                fatalError("the embedded template \(name) does not parse: \(error)")
            }
        }
        return library
    }()

    /// The pages, on route groups whose middleware admit each request (`WebContext.swift`): the
    /// login and the stylesheet for anyone; the pages for a signed-in user; their writes with this
    /// node's form token, and those that change the replica for the roles that may.
    public func register(on router: Router<NodeRequestContext>) {
        let web = router.group(context: WebRequestContext.self).add(middleware: VisitorMiddleware())
        web.get("login") { request, _ in loginPage(request, error: nil, status: .ok) }
        web.post("login") { request, context in try await login(request, context) }
        // The stylesheet and the offline web app (`Static/`): its manifest, its service worker
        // (at the root, so it serves every page) and the page script that keeps forms offline.
        for (path, type, bytes) in Self.staticFiles {
            web.get(RouterPath(path)) { _, _ in
                Response(status: .ok, headers: Self.staticHeaders(type), body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
            }
        }
        web.get("offline") { request, context in
            let labels = context.visitor.language.labels
            return message(
                context.visitor, session: nil, status: .ok, heading: labels["offlinePage"] ?? "", text: labels["offlinePageText"] ?? "",
                link: "/entry")
        }
        let pages = web.group().add(middleware: WebSessionAuthenticator(store: store)).add(middleware: SignedInMiddleware(web: self))
        pages.get("/") { _, context in try await page(context) { session, lang in try dashboard(session, lang) } }
        pages.get("password") { _, context in try await page(context) { _, lang in passwordPage(lang) } }
        pages.get("entry") { _, context in try await page(context) { session, lang in try entryList(session, lang) } }
        pages.get("entry/{kind}") { _, context in
            let kind = context.parameters.get("kind") ?? ""
            return try await page(context) { session, lang in try form(session, lang, kind: kind, values: [:], problems: []) }
        }
        pages.get("correct/{ledger}/{id}") { request, context in
            let (ledger, id) = (context.parameters.get("ledger") ?? "", context.parameters.get("id") ?? "")
            do {
                return try await page(context) { session, lang in try correctionForm(session, lang, ledger: ledger, entryID: id) }
            } catch let error as SyncNodeError where error.code == .notFound || error.code == .invalidInput {
                return notFound(request)
            }
        }
        pages.get("mine") { request, context in try await page(context) { session, lang in try mine(session, lang, request) } }
        pages.get("conflicts") { _, context in
            try await page(context) { session, lang in try conflictsPage(session, lang, error: nil, done: nil) }
        }
        pages.get("report/{name}") { request, context in
            let name = context.parameters.get("name") ?? ""
            guard Store.reportNames.contains(name) else { return notFound(request) }
            let year = request.uri.queryParameters.get("year").flatMap { Int($0) }
            return try await page(context) { _, lang in try reportPage(lang, name: name, year: year) }
        }
        pages.get("submissions") { _, context in
            try await page(context) { session, lang in try submissionsPage(session, lang, error: nil, done: nil) }
        }
        pages.get("export/{file}") { request, context in try await export(request, context, file: context.parameters.get("file") ?? "") }
        pages.get("record/{collection}/{id}") { request, context in
            let (collection, id) = (Self.pathParameter(context, "collection"), Self.pathParameter(context, "id"))
            guard let session = context.visitor.session else { throw HTTPError(.unauthorized) }
            let visitor = context.visitor
            let page = try await BlockingWork.run { () throws -> Response? in
                guard let (template, model) = try recordPage(session, visitor.language, collection: collection, id: id) else { return nil }
                return render(template, model, visitor: visitor, session: session)
            }
            return page ?? notFound(request)
        }
        pages.get("file/{sha}") { request, context in try await file(request, sha256: context.parameters.get("sha") ?? "") }
        // A file's bytes are its body: the record's page sends them with the form token in a header.
        pages.post("attach/{collection}/{id}") { request, context in
            try await attach(request, context, collection: Self.pathParameter(context, "collection"), id: Self.pathParameter(context, "id"))
        }
        let writes = pages.group().add(middleware: FormGate(web: self))
        writes.post("logout") { _, context in try await logout(context) }
        writes.post("password") { _, context in try await changePassword(context) }
        let clerks = writes.group().add(middleware: RoleGate(web: self, may: \.mayWrite))
        clerks.post("entry/{kind}") { request, context in try await record(request, context, kind: context.parameters.get("kind") ?? "") }
        clerks.post("submissions/review") { _, context in try await reviewSubmission(context) }
        clerks.post("correct/{ledger}/{id}") { request, context in
            try await correct(request, context, ledger: context.parameters.get("ledger") ?? "", entryID: context.parameters.get("id") ?? "")
        }
        writes.group().add(middleware: RoleGate(web: self, may: \.mayResolve)).post("conflicts/resolve") { _, context in
            try await resolve(context)
        }
        // Anything else: a page that says so (the sync API keeps its JSON errors).
        router.add(middleware: NotFoundPage(web: self))
        // The stand-in hash is made now, not by the first login with an unknown name (whose
        // answer would otherwise take one bcrypt longer than a known name's).
        Task.detached(priority: .background) { _ = Self.unknownUserHash }
    }

    // MARK: sessions

    struct Visitor {
        var session: WebSession?
        var tokenHash: String?
        var language: Language
        var setLanguage: Bool
    }

    /// What the node keeps of the request's session token (its SHA-256), if the cookie has one.
    static func sessionTokenHash(_ request: Request) -> String? {
        guard let token = request.cookies[Self.cookieName]?.value, token.utf8.count == 64 else { return nil }
        return hash(token)
    }

    /// A visitor's language only, for the pages that need no session (login, 404): no SQLite read.
    static func anonymous(_ request: Request) -> Visitor {
        let query = request.uri.queryParameters.get("lang")
        let language = Language.choose(
            query: query, cookie: request.cookies[Self.languageCookie]?.value, acceptLanguage: request.headers[.acceptLanguage])
        return Visitor(session: nil, tokenHash: nil, language: language, setLanguage: query.flatMap(Language.init(rawValue:)) != nil)
    }

    /// What the node keeps of a session token.
    static func hash(_ token: String) -> String { Secret.sha256Hex(token.utf8) }

    /// A session token or form token: 256 random bits.
    static func randomToken() -> String { Secret.hex(bytes: 32) }

    /// A page for the signed-in user (`SignedInMiddleware` admitted the request), built off the
    /// cooperative pool (its reports read SQLite).
    func page(_ context: WebRequestContext, _ build: @escaping @Sendable (WebSession, Language) throws -> (String, [String: Any])) async throws
        -> Response
    {
        let visitor = context.visitor
        guard let session = visitor.session else { throw HTTPError(.unauthorized) }
        return try await BlockingWork.run {
            let (template, model) = try build(session, visitor.language)
            return render(template, model, visitor: visitor, session: session)
        }
    }

    func render(_ template: String, _ model: [String: Any], visitor: Visitor, session: WebSession?, status: HTTPResponse.Status = .ok)
        -> Response
    {
        let html = html(template, model, language: visitor.language, session: session)
        var headers = Self.pageHeaders
        if visitor.setLanguage {
            headers[.setCookie] = "\(Self.languageCookie)=\(visitor.language.rawValue); Path=/; SameSite=Strict; Max-Age=31536000"
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func html(_ template: String, _ model: [String: Any], language: Language, session: WebSession?) -> String {
        var model = model
        model["t"] = language.labels
        model["lang"] = language.rawValue
        model["nodeLabel"] = store.info.label
        model["nodeSite"] = store.info.site
        model["isHQ"] = store.info.role == .hq
        if let session {
            model["session"] = true
            model["csrf"] = session.csrf
            model["user"] = session.user.name
            model["role"] = session.user.role.rawValue
        }
        return templates.render(model, withTemplate: template) ?? ""
    }

    /// What the pages load besides themselves, each with its media type.
    static let staticFiles: [(path: String, type: String, bytes: [UInt8])] = [
        ("static/site.css", "text/css; charset=utf-8", PackageResources.site_css),
        ("static/offline.js", "text/javascript; charset=utf-8", PackageResources.offline_js),
        ("static/icon.svg", "image/svg+xml", PackageResources.icon_svg),
        ("manifest.webmanifest", "application/manifest+json", PackageResources.manifest_webmanifest),
        ("sw.js", "text/javascript; charset=utf-8", PackageResources.sw_js),
        ("static/attach.js", "text/javascript; charset=utf-8", PackageResources.attach_js),
    ]

    /// A static file's headers: revalidated on every load (a new binary's script is used at once;
    /// the service worker keeps its own copies for when the node cannot be reached).
    static func staticHeaders(_ type: String) -> HTTPFields {
        [
            .contentType: type, .cacheControl: "no-cache", HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            // The service worker runs under its own response's policy: it may fetch from this node only.
            .contentSecurityPolicy: "default-src 'none'; connect-src 'self'",
        ]
    }

    /// Every page: nothing from another host may load (no CDN, no script from elsewhere), no framing.
    static let pageHeaders: HTTPFields = [
        .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
        .contentSecurityPolicy:
            "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "same-origin",
        HTTPField.Name("X-Frame-Options")!: "DENY",
    ]

    static func redirect(to location: String, status: HTTPResponse.Status = .seeOther, cookie: String? = nil) -> Response {
        var headers: HTTPFields = [.location: location, .cacheControl: "no-store"]
        if let cookie { headers[.setCookie] = cookie }
        return Response(status: status, headers: headers)
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~/"))) ?? "/"
    }

    func message(_ visitor: Visitor, session: WebSession?, status: HTTPResponse.Status, heading: String, text: String, link: String = "/")
        -> Response
    {
        let labels = visitor.language.labels
        return render(
            "message", ["title": heading, "heading": heading, "message": text, "link": link, "linkText": labels["back"] ?? "back"],
            visitor: visitor, session: session, status: status)
    }

    /// The page that answers a refused request: its status and what the label says.
    func refusal(_ visitor: Visitor, _ status: HTTPResponse.Status, _ label: String, link: String = "/") -> Response {
        message(visitor, session: visitor.session, status: status, heading: "\(status.code)", text: visitor.language.labels[label] ?? "", link: link)
    }

    func notFound(_ request: Request) -> Response {
        let visitor = Self.anonymous(request)
        return message(visitor, session: nil, status: .notFound, heading: "404", text: visitor.language.labels["notFound"] ?? "")
    }

    // MARK: login

    func loginPage(_ request: Request, error: String?, status: HTTPResponse.Status, userName: String = "", next: String? = nil) -> Response {
        let visitor = Self.anonymous(request)
        var model: [String: Any] = [
            "title": visitor.language.labels["login"] ?? "", "next": next ?? request.uri.queryParameters.get("next") ?? "/", "userName": userName,
        ]
        if let error { model["error"] = error }
        return render("login", model, visitor: visitor, session: nil, status: status)
    }

    /// The login form's fields.
    struct LoginForm: Decodable {
        var user: String?
        var password: String?
        var next: String?
    }

    func login(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let address = LoginLimiter.addressKey(context.remoteAddress)
        let visitor = context.visitor
        let labels = visitor.language.labels
        guard sameOrigin(request) else { return refusal(visitor, .forbidden, "staleForm", link: "/login") }
        let form: LoginForm
        do {
            form = try await WebForm.read(request).decode(LoginForm.self)
        } catch let error as FormError {
            return refusal(visitor, error.status, error.label, link: "/login")
        }
        let user = form.user ?? ""
        let password = form.password ?? ""
        let next = Self.safeNext(form.next)
        let shownName = String(user.prefix(64))
        // Counted per name from every address (and loosely per address) before it is checked, so
        // that attempts sent at once cannot all pass the limit; a success is taken back.
        let attempt: LoginLimiter.Attempt
        switch limiter.begin(name: user, address: address) {
        case .admitted(let admitted): attempt = admitted
        case let refused:
            let (text, wait) = Self.waitMessage(refused, labels)
            logger.notice("web login refused", metadata: ["web.user": "\(shownName)", "web.address": "\(address)", "web.wait": "\(wait)"])
            return Self.withRetryAfter(wait, loginPage(request, error: text, status: .tooManyRequests, userName: shownName, next: next))
        }
        let store = store
        let found = try await BlockingWork.run { try store.webUser(user) }
        // bcrypt runs even for an unknown name, against a real hash of the same cost, so the
        // answer's time does not tell which names exist; at most two run at once.
        let verified = try await Self.hashing.admit {
            try await BlockingWork.run { Bcrypt.verify(password, hash: found?.passwordHash ?? Self.unknownUserHash) }
        }
        guard let found, verified, !password.isEmpty else {
            logger.notice("web login failed", metadata: ["web.user": "\(shownName)", "web.address": "\(address)"])
            // A failed attempt is slowed down; repeated ones for the name wait longer each time (above).
            try await Task.sleep(for: .seconds(1))
            limiter.failed(attempt)
            return loginPage(request, error: labels["badLogin"], status: .unauthorized, userName: shownName, next: next)
        }
        limiter.succeeded(attempt)
        let token = Self.randomToken()
        let expires = store.nowMillis() + sessionSeconds * 1000
        let sessionSeconds = sessionSeconds
        try await BlockingWork.run {
            try store.startWebSession(user: found.name, tokenHash: Self.hash(token), csrf: Self.randomToken(), expires: expires)
        }
        logger.info("web login", metadata: ["web.user": "\(found.name)", "web.address": "\(address)"])
        return Self.redirect(
            to: next,
            cookie: "\(Self.cookieName)=\(token); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(sessionSeconds)\(secureCookies ? "; Secure" : "")")
    }

    /// What a refusal of the login limiter says: how long to wait, in the visitor's words, and in seconds.
    static func waitMessage(_ decision: LoginLimiter.Decision, _ labels: [String: String]) -> (String, Int) {
        let (label, seconds): (String, Int)
        switch decision {
        case .admitted: return ("", 0)
        case .accountWaits(let wait): (label, seconds) = ("limitedName", wait)
        case .addressWaits(let wait): (label, seconds) = ("limitedAddress", wait)
        }
        let (minutes, rest) = seconds.quotientAndRemainder(dividingBy: 60)
        let duration =
            minutes == 0
            ? (labels["waitSeconds"] ?? "").replacingOccurrences(of: "{s}", with: String(rest))
            : rest == 0
                ? (labels["waitMinutes"] ?? "").replacingOccurrences(of: "{m}", with: String(minutes))
                : (labels["waitMinutesSeconds"] ?? "").replacingOccurrences(of: "{m}", with: String(minutes))
                    .replacingOccurrences(of: "{s}", with: String(rest))
        return ((labels[label] ?? "").replacingOccurrences(of: "{wait}", with: duration), seconds)
    }

    /// A 429's `Retry-After`.
    static func withRetryAfter(_ seconds: Int, _ response: Response) -> Response {
        var response = response
        response.headers[.retryAfter] = String(seconds)
        return response
    }

    /// bcrypt checks running at once: a burst of logins cannot take both cores from the sync API.
    static let hashing = AdmissionGate(slots: 2, maxWaiting: 64)

    /// A hash no password matches, made once, of the cost `syncnode user add` uses.
    static let unknownUserHash = Bcrypt.hash(Secret.hex(bytes: 32), cost: WebUser.passwordCost)

    /// Only a path on this node (never another host) after logging in.
    /// Browsers drop tabs and line breaks from a URL (`/\t/host` becomes `//host`), so a path with
    /// any control character, space or backslash is refused, not just one that starts with `//`.
    static func safeNext(_ next: String?) -> String {
        guard let next, next.hasPrefix("/"), !next.hasPrefix("//"), next.utf8.count < 500,
            next.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != "\\" })
        else { return "/" }
        return next
    }

    func logout(_ context: WebRequestContext) async throws -> Response {
        if let hash = context.tokenHash { try await BlockingWork.run { [store] in try store.endWebSession(tokenHash: hash) } }
        return Self.redirect(to: "/login", cookie: "\(Self.cookieName)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// A write admitted by the gates (`WebRequestContext.write`).
    struct Write {
        var session: WebSession
        var tokenHash: String?
        var visitor: Visitor
        var form: WebForm

        func value(_ name: String) -> String? { form.value(name) }
    }

    /// A browser says where a form came from (`Origin`, else `Referer`); it must be this node.
    func sameOrigin(_ request: Request) -> Bool {
        guard let host = request.head.authority else { return false }
        let source = request.headers[HTTPField.Name("Origin")!] ?? request.headers[.referer]
        guard let source, source != "null" else { return request.headers[HTTPField.Name("Origin")!] == nil }
        guard let url = URL(string: source), let sourceHost = url.host else { return false }
        return (url.port.map { "\(sourceHost):\($0)" } ?? sourceHost) == host
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    struct FormError: Error {
        var status: HTTPResponse.Status
        var label: String
    }
}

/// Answers a path no route serves with a page that says so, in the visitor's language.
struct NotFoundPage: RouterMiddleware {
    typealias Context = NodeRequestContext
    let web: WebInterface

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && !request.uri.path.hasPrefix("/v1/") {
            return web.notFound(request)
        }
    }
}
