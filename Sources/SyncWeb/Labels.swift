import Foundation

/// The pages' words in Chinese (the default) and English (`?lang=en`, or a browser that prefers
/// English). Every label a page shows is here; templates read them as `{{t.NAME}}`.
public enum Language: String, Sendable {
    case zh, en

    /// `?lang=` wins, then the language cookie, then the browser's first preference between the two.
    static func choose(query: String?, cookie: String?, acceptLanguage: String?) -> Language {
        if let query, let l = Language(rawValue: query) { return l }
        if let cookie, let l = Language(rawValue: cookie) { return l }
        for tag in (acceptLanguage ?? "").split(separator: ",") {
            let code = tag.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if code.hasPrefix("zh") { return .zh }
            if code.hasPrefix("en") { return .en }
        }
        return .zh
    }

    var labels: [String: String] { self == .zh ? Labels.zh : Labels.en }

    /// A report column's heading: the report's own (Chinese) label, or its English one.
    func column(_ id: String, _ label: String) -> String { self == .zh ? label : Labels.columnsEn[id] ?? label }
}

enum Labels {
    static let zh: [String: String] = [
        "app": "东丽区对口帮扶", "dashboard": "总览", "entry": "录入", "mine": "本节点记录", "conflicts": "冲突", "logout": "退出",
        "assessmentView": "考核", "noticeView": "督查通报", "allYears": "全部年度",
        "login": "登录", "user": "用户名", "password": "密码", "submit": "提交", "funds": "资金（万元）", "fundsChart": "各县年度资金：目标与拨付",
        "target": "目标", "disbursed": "已拨付", "progress": "累计进度", "projects": "项目（按县和阶段）", "late": "逾期项目",
        "activities": "活动（按县和工作领域）", "tasks": "督办事项（逾期，按牵头单位）", "review": "待审", "sync": "各节点同步情况",
        "stale": "超过一天未联系", "none": "无", "more": "另有 {n} 条未显示", "county": "县", "count": "数量",
        "export": "下载", "exportXlsx": "Excel 工作簿（全部报表）", "exportCsv": "CSV", "choose": "请选择", "id": "编号",
        "update": "修改已有记录", "confirm": "已核实，仍按此记录", "recorded": "已记录（事务 {n}）", "errors": "未记录，请改正：",
        "state.not_sent": "未发送", "state.sent": "已发送", "state.at_hq": "已到总部", "state.refused": "被拒绝", "time": "时间",
        "what": "内容", "state": "状态", "resolve": "解决", "keep": "保留当前值", "value": "新值", "field": "字段", "record": "记录",
        "current": "当前值", "other": "另一版本", "keepThis": "保留此值", "reviewed": "总部审核", "submissions": "审核", "approve": "通过", "return": "退回",
        "returnNote": "退回原因",
        "reviewState.none": "待审核", "onlyHQReviews": "只有总部节点审核提交的记录。", "submissionNotHere": "本节点没有这条提交（同步后才会到达）。",
        "reviewDone": "已记录审核（事务 {n}）。", "returnNeedsNote": "退回时请写明需要更正的内容。", "conflictGone": "该冲突已不存在（已有人先处理），请看下面的最新情况。", "writtenBy": "录入",
        "orType": "或输入新值",
        "viewerNote": "您的账户只能查看。", "badLogin": "用户名或密码不对。",
        "limitedName": "此用户名登录失败次数过多，请 {wait}后再试。", "limitedAddress": "从此网络地址登录失败的用户名过多，请 {wait}后再试。",
        "waitSeconds": "{s} 秒", "waitMinutes": "{m} 分钟", "waitMinutesSeconds": "{m} 分 {s} 秒", "notFound": "没有这个页面。", "forbidden": "无权执行此操作。",
        "staleForm": "表单已过期或来自其他网站，请重新打开页面。", "tooLarge": "提交的内容太大。", "badForm": "提交的表单无法读取（字段重复或格式不对），请在本页重新填写。", "expired": "请重新登录。",
        "langOther": "English", "langOtherCode": "en", "asOf": "数据截至", "node": "节点", "noKinds": "本节点不能录入任何类型。",
        "money.hint": "金额可写 万 或 元，如 12.5万", "correct": "更正", "undo": "撤销", "author": "记录者：", "withdrawal": "撤销",
        "withdrawn": "已撤销", "correctTitle": "更正", "noChange": "没有改动：请修改要更正的内容，或点“撤销”。", "required": "必填", "back": "返回", "stageCount": "阶段",
        "changePassword": "修改密码", "oldPassword": "原密码", "newPassword": "新密码", "newPasswordAgain": "再次输入新密码",
        "passwordRule": "新密码至少 8 个字符，最多 72 字节（约 24 个汉字）。", "passwordShort": "新密码太短：至少 8 个字符。",
        "passwordLong": "新密码太长：最多 72 字节（约 24 个汉字）。", "passwordMismatch": "两次输入的新密码不一致。", "passwordWrong": "原密码不对。",
        "passwordChanged": "密码已修改。您在其他浏览器或电脑上的登录已退出。",
        "offlineTitle": "保存在本机、尚未交给本节点的录入", "offlineWaiting": "等待发送", "offlineRefused": "节点未接受",
        "offlineDismiss": "知道了", "offlineSendNow": "立即发送", "offlineSignIn": "请先登录；登录后会自动发送。",
        "offlinePage": "暂时连不上本节点", "offlineShould": "应填", "offlineReopen": "重新填写",
        "offlinePageText": "打开过的录入表单仍可填写：录入先保存在本机，连上本节点后自动发送，每条只记录一次。",
        "evidence": "照片与附件", "fileNotHere": "文件尚未到达本节点（同步后到达）", "place": "位置", "noFiles": "暂无照片或附件",
        "attach": "添加照片或文件", "file": "文件", "caption": "说明", "reduce": "先缩小照片再上传（约 1600 像素，省流量）",
        "needsScript": "添加照片需要浏览器启用 JavaScript。", "attached": "已添加（事务 {n}）。", "kind.photo": "照片", "kind.pdf": "PDF 文件",
        "sending": "正在上传…", "attachForbidden": "本节点不能给这条记录添加文件：县节点只给本县的记录添加。",
        "attachFailed": "未能添加。请刷新页面（必要时重新登录）后再试。",
    ]

    static let en: [String: String] = [
        "app": "Dongli District partner assistance", "dashboard": "Dashboard", "entry": "Record", "mine": "This node's work",
        "conflicts": "Conflicts", "logout": "Log out", "assessmentView": "Assessment", "noticeView": "Supervision notice",
        "allYears": "All years", "login": "Log in", "user": "User name", "password": "Password", "submit": "Submit",
        "funds": "Funds (10k yuan)", "fundsChart": "Funds per county and year: target and disbursed", "target": "Target",
        "disbursed": "Disbursed", "progress": "Cumulative progress", "projects": "Projects by county and stage", "late": "Late projects",
        "activities": "Activities by county and work area", "tasks": "Overdue supervision items by lead unit", "review": "Review queue",
        "sync": "Sync health per node", "stale": "not heard from for over a day", "none": "none", "more": "{n} more not shown",
        "county": "County", "count": "Count", "export": "Download", "exportXlsx": "Excel workbook (all reports)", "exportCsv": "CSV",
        "choose": "choose", "id": "ID", "update": "Change an existing record", "confirm": "Checked: record it as it is",
        "recorded": "Recorded (transaction {n})", "errors": "Nothing was recorded; please correct:", "state.not_sent": "not yet sent",
        "state.sent": "sent", "state.at_hq": "at HQ", "state.refused": "refused", "time": "Time", "what": "What", "state": "State",
        "resolve": "Resolve", "keep": "Keep the current value", "value": "New value", "field": "Field", "record": "Record",
        "current": "Current", "other": "Other version", "keepThis": "Keep this value", "reviewed": "HQ review", "submissions": "Review",
        "approve": "Approve", "return": "Return",
        "returnNote": "Why it is returned", "reviewState.none": "Not reviewed", "onlyHQReviews": "Only HQ's node reviews submissions.",
        "submissionNotHere": "That submission is not held here (it arrives with a sync).",
        "reviewDone": "Review recorded (transaction {n}).", "returnNeedsNote": "Say what to correct when returning a submission.",
        "conflictGone": "That conflict is gone (someone resolved it first); see the list as it is now.", "writtenBy": "written by",
        "orType": "or type a new value", "viewerNote": "Your account may only look.",
        "badLogin": "Wrong user name or password.", "limitedName": "Too many failed logins for this user name; try again in {wait}.",
        "limitedAddress": "Too many user names failed to log in from this address; try again in {wait}.", "waitSeconds": "{s} seconds",
        "waitMinutes": "{m} minutes", "waitMinutesSeconds": "{m} min {s} s",
        "notFound": "There is no such page.", "forbidden": "You may not do this.",
        "staleForm": "The form is stale or came from another site; open the page again.", "tooLarge": "The form is too large.",
        "badForm": "The form cannot be read (a field twice or malformed); fill it in again on its page.",
        "expired": "Please log in again.", "langOther": "中文", "langOtherCode": "zh", "asOf": "Data as of", "node": "Node",
        "noKinds": "This node cannot record any kind.", "money.hint": "amount in 万 or 元, e.g. 12.5万", "required": "required",
        "correct": "Correct", "undo": "Withdraw", "author": "by ", "withdrawal": "Withdrawal of", "withdrawn": "withdrawn", "correctTitle": "Correct",
        "noChange": "Nothing changed: change what is wrong, or withdraw the entry.",
        "back": "Back", "stageCount": "Stage", "changePassword": "Change password", "oldPassword": "Current password",
        "newPassword": "New password", "newPasswordAgain": "New password again",
        "passwordRule": "At least 8 characters, at most 72 bytes.", "passwordShort": "Too short: at least 8 characters.",
        "passwordLong": "Too long: at most 72 bytes.", "passwordMismatch": "The two new passwords differ.",
        "passwordWrong": "The current password is wrong.", "passwordChanged": "Password changed. Your sessions in other browsers have ended.",
        "offlineTitle": "Entries kept on this device, not yet with the node", "offlineWaiting": "waiting",
        "offlineRefused": "not accepted by the node", "offlineDismiss": "Dismiss", "offlineSendNow": "Send now",
        "offlineSignIn": "Sign in; they are sent once you are.", "offlinePage": "The node cannot be reached", "offlineShould": "takes",
        "offlineReopen": "Reopen",
        "offlinePageText": "Forms you opened before still work: entries are kept on this device and sent once each when the node answers again.",
        "evidence": "Photos and files", "fileNotHere": "not on this node yet (arrives with a sync)", "place": "location",
        "noFiles": "no photos or files",
        "attach": "Attach a photo or file", "file": "File", "caption": "Caption", "reduce": "Reduce the photo before sending (about 1600 px)",
        "needsScript": "Attaching needs JavaScript in the browser.", "attached": "Attached (transaction {n}).", "kind.photo": "photo",
        "kind.pdf": "PDF",
        "sending": "sending…",
        "attachForbidden": "This node may not attach files to that record: a county attaches to its own records only.",
        "attachFailed": "Not attached. Reload the page (log in again if asked) and try again.",
    ]

    static let columnsEn: [String: String] = [
        "county": "County", "year": "Year", "target": "Target", "allocated": "Allocated", "disbursed": "Disbursed", "spent": "Spent",
        "donated": "Donated", "disbursedPct": "% of target", "lastReceived": "Last received", "id": "ID", "name": "Name",
        "workArea": "Work area", "stage": "Stage", "progressPct": "Progress %", "plannedEnd": "Planned end", "late": "Late",
        "kind": "Kind", "entries": "Entries", "people": "People", "attendees": "Attendees", "amount": "Amount", "type": "Type",
        "item": "Item", "detail": "Detail", "leadUnit": "Lead unit", "title": "Title", "due": "Due", "extendedTo": "Extended to",
        "feedback": "Feedback", "state": "State", "label": "Node", "site": "Site", "role": "Role", "node": "ID",
        "transactions": "Transactions", "lastHeard": "Last contact", "notYetHere": "Not yet here", "clockSkewSeconds": "Clock skew (s)",
        "protocol": "Protocol", "targetBasis": "Target basis", "recordedBy": "Recorded by", "poor": "Of them poor", "patients": "Patients",
        "beneficiaries": "Beneficiaries", "heading": "Heading", "indicator": "Indicator", "unit": "Unit", "total": "Total",
        "leader": "Responsible leader", "person": "Responsible person", "finishedOn": "Finished on", "daysLate": "Days late",
    ]
}
