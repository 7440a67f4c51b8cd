// Every string of the self-service page in English and Simplified Chinese. The language is chosen on the page and
// kept in sessionStorage; dates are formatted in the viewer's locale.

export type SelfLang = "en" | "zh";
const LANG_KEY = "ferry.selfserve.lang";

const en: Record<string, string> = {
  "app.title": "Your data: requests",
  "app.intro": "Ask for a copy of your data, its erasure, correction, restriction or objection. Nothing about you is shown here until your identity is verified.",
  "file.title": "File a request",
  "file.intro": "You get a reference and a secret: keep both to check your request later.",
  "file.kind": "What do you ask for?",
  "file.project": "Service",
  "file.contact": "How can we reach you? (e-mail or phone)",
  "file.identifier": "Your account name or e-mail in the app (optional)",
  "file.submit": "File the request",
  "kind.access": "A copy of my data (access)",
  "kind.erasure": "Erase my data",
  "kind.correction": "Correct my data",
  "kind.portability": "My data in a portable form",
  "kind.restriction": "Restrict the processing of my data",
  "kind.objection": "Object to the processing of my data",
  "status.title": "Your request",
  "status.keep": "Keep this reference and secret. The secret is shown only once.",
  "status.reference": "Reference",
  "status.secret": "Secret",
  "status.kind": "Request",
  "status.state": "State",
  "status.received": "Received",
  "status.due": "Due",
  "status.reason": "Reason for refusal",
  "status.refresh": "Refresh",
  "status.another": "Another request",
  "state.received": "Received: waiting for the verification of your identity",
  "state.awaiting_verification": "Identity shown: waiting for the officer",
  "state.in_progress": "In progress",
  "state.extended": "In progress (extended)",
  "state.completed": "Completed",
  "state.rejected": "Refused",
  "verify.title": "Verify with the code from the app",
  "verify.intro": "Open the app, ask it for a verification code and type it here. Attempts left: {left}.",
  "verify.code": "Code from the app",
  "verify.submit": "Verify",
  "verify.done": "Thank you: your identity is verified. The officer will now handle your request.",
  "copy.download": "Download my copy",
  "copy.save": "Save my copy",
  "copy.done": "Your copy was downloaded. The request is completed.",
  "lookup.title": "Check a request",
  "lookup.submit": "Check",
  "error": "Sorry, that did not work: {error}",
};

const zh: Record<string, string> = {
  "app.title": "您的数据：申请",
  "app.intro": "申请获取您的数据副本、删除、更正、限制处理或反对处理。在核实您的身份之前，此处不会显示任何关于您的信息。",
  "file.title": "提交申请",
  "file.intro": "您将获得一个编号和一个密钥：请妥善保存，以便日后查询申请。",
  "file.kind": "您申请什么？",
  "file.project": "服务",
  "file.contact": "我们如何联系您？（电子邮件或电话）",
  "file.identifier": "您在应用中的账号名或电子邮件（可选）",
  "file.submit": "提交申请",
  "kind.access": "获取我的数据副本（查阅）",
  "kind.erasure": "删除我的数据",
  "kind.correction": "更正我的数据",
  "kind.portability": "以可携带的格式获取我的数据",
  "kind.restriction": "限制处理我的数据",
  "kind.objection": "反对处理我的数据",
  "status.title": "您的申请",
  "status.keep": "请保存此编号和密钥。密钥只显示一次。",
  "status.reference": "编号",
  "status.secret": "密钥",
  "status.kind": "申请",
  "status.state": "状态",
  "status.received": "收到时间",
  "status.due": "截止时间",
  "status.reason": "拒绝理由",
  "status.refresh": "刷新",
  "status.another": "其他申请",
  "state.received": "已收到：等待核实您的身份",
  "state.awaiting_verification": "身份已核实：等待负责人处理",
  "state.in_progress": "处理中",
  "state.extended": "处理中（已延期）",
  "state.completed": "已完成",
  "state.rejected": "已拒绝",
  "verify.title": "使用应用中的验证码核实",
  "verify.intro": "打开应用，获取验证码并在此输入。剩余次数：{left}。",
  "verify.code": "应用中的验证码",
  "verify.submit": "核实",
  "verify.done": "谢谢：您的身份已核实。负责人将处理您的申请。",
  "copy.download": "下载我的副本",
  "copy.save": "保存我的副本",
  "copy.done": "您的副本已下载。申请已完成。",
  "lookup.title": "查询申请",
  "lookup.submit": "查询",
  "error": "抱歉，操作未成功：{error}",
};

let lang: SelfLang = (() => {
  try {
    const kept = sessionStorage.getItem(LANG_KEY);
    if (kept === "en" || kept === "zh") return kept;
  } catch {
    // no storage: the browser's language
  }
  return navigator.language.toLowerCase().startsWith("zh") ? "zh" : "en";
})();

export function currentSelfLang(): SelfLang {
  return lang;
}

export function setSelfLang(l: SelfLang): void {
  lang = l;
  try {
    sessionStorage.setItem(LANG_KEY, l);
  } catch {
    // kept for this page only
  }
}

// The string `key` in the current language, with {name} placeholders filled (as text: the page renders it as text).
export function st(key: string, vars: Record<string, string> = {}): string {
  const s = (lang === "zh" ? zh : en)[key] ?? en[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k: string) => vars[k] ?? "");
}
