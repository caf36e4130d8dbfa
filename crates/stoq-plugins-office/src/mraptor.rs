//! MacroRaptor: the oletools heuristic that flags VBA code as suspicious
//! when it runs by itself (AutoExec) and writes to disk (Write) or runs
//! something (Execute).
//!
//! The three keyword rules reproduce the ones documented in oletools 0.60
//! `mraptor.py` (same keywords, same `\b` word boundaries, case-insensitive):
//!
//! - AutoExec: `Auto(Exec|_?Open|_?Close|Exit|New)`, `Document(_?Open|
//!   _Close|_?BeforeClose|Change|_New)`, `NewDocument`, `Workbook(_Open|
//!   _Activate|_Close|_BeforeClose)`, any `<name>_<event>` for the ActiveX
//!   and form events (Painted, Painting, GotFocus, LostFocus, MouseHover,
//!   Layout, Click, Change, Resize, BeforeNavigate2, BeforeScriptExecute,
//!   DocumentComplete, DownloadBegin, DownloadComplete, FileDownload,
//!   NavigateComplete2, NavigateError, ProgressChange, PropertyChange,
//!   SetSecureLockIcon, StatusTextChange, TitleChange, MouseMove,
//!   MouseEnter, MouseLeave, OnConnecting), and `Auto_Ope` (kept by
//!   oletools for a plugin_biff bug);
//! - Write: FileCopy, CopyFile, Kill, CreateTextFile, VirtualAlloc,
//!   RtlMoveMemory, URLDownloadToFile(A), AltStartupPath,
//!   WriteProcessMemory, ADODB.Stream, WriteText, SaveToFile, SaveAs,
//!   SaveAsRTF, FileSaveAs, MkDir, RmDir, SaveSetting, SetAttr, and an
//!   `Open ... (Write|Append|Binary|Output|Random)` statement on one line;
//! - Execute: Shell, CreateObject, GetObject, SendKeys, RUN, CALL,
//!   MacScript, FollowHyperlink, CreateThread, ShellExecute(A),
//!   ExecuteExcel4Macro, EXEC, REGISTER, SetTimer, and a
//!   `Declare ... Lib` statement on one line.
//!
//! Before matching, line continuations (`" _"` + line break) are collapsed
//! into a space, as mraptor does.

use std::sync::OnceLock;

use regex::Regex;

/// The three rules (AutoExec, Write, Execute).
struct Rules {
    autoexec: Regex,
    write: Regex,
    execute: Regex,
}

fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| {
        let autoexec = concat!(
            r"(?i)\b(?:Auto(?:Exec|_?Open|_?Close|Exit|New)",
            r"|Document(?:_?Open|_Close|_?BeforeClose|Change|_New)",
            r"|NewDocument|Workbook(?:_Open|_Activate|_Close|_BeforeClose)",
            r"|\w+_(?:Painted|Painting|GotFocus|LostFocus|MouseHover",
            r"|Layout|Click|Change|Resize|BeforeNavigate2|BeforeScriptExecute",
            r"|DocumentComplete|DownloadBegin|DownloadComplete|FileDownload",
            r"|NavigateComplete2|NavigateError|ProgressChange|PropertyChange",
            r"|SetSecureLockIcon|StatusTextChange|TitleChange|MouseMove",
            r"|MouseEnter|MouseLeave|OnConnecting))|Auto_Ope\b",
        );
        let write = concat!(
            r"(?i)\b(?:FileCopy|CopyFile|Kill|CreateTextFile|",
            r"VirtualAlloc|RtlMoveMemory|URLDownloadToFileA?|AltStartupPath|WriteProcessMemory|",
            r"ADODB\.Stream|WriteText|SaveToFile|SaveAs|SaveAsRTF|FileSaveAs|MkDir|RmDir|SaveSetting|SetAttr)\b|",
            r"(?:\bOpen\b[^\n]+\b(?:Write|Append|Binary|Output|Random)\b)",
        );
        let execute = concat!(
            r"(?i)\b(?:Shell|CreateObject|GetObject|SendKeys|RUN|CALL|",
            r"MacScript|FollowHyperlink|CreateThread|ShellExecuteA?|ExecuteExcel4Macro|EXEC|REGISTER|SetTimer)\b|",
            r"(?:\bDeclare\b[^\n]+\bLib\b)",
        );
        // Constant patterns: compiling them cannot depend on input, and the
        // unit tests compile them.
        let build = |p: &str| Regex::new(p).expect("constant MacroRaptor pattern");
        Rules {
            autoexec: build(autoexec),
            write: build(write),
            execute: build(execute),
        }
    })
}

/// Collapse VBA line continuations like mraptor (`" _\r\n"`, `" _\r"`,
/// `" _\n"` → `" "`).
pub fn collapse_long_lines(code: &str) -> String {
    code.replace(" _\r\n", " ")
        .replace(" _\r", " ")
        .replace(" _\n", " ")
}

/// The verdict of MacroRaptor on some VBA code.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub autoexec: bool,
    pub write: bool,
    pub execute: bool,
    /// AutoExec and (Write or Execute).
    pub suspicious: bool,
    /// The first match of each rule that matched, in rule order (what
    /// mraptor reports as `matches`).
    pub matches: Vec<String>,
    /// Every distinct AutoExec keyword found, in order of appearance.
    pub autoexec_keywords: Vec<String>,
    /// Every distinct Write keyword found.
    pub write_keywords: Vec<String>,
    /// Every distinct Execute keyword found.
    pub execute_keywords: Vec<String>,
}

impl Verdict {
    /// mraptor's flags string: `A`, `W`, `X` or `-` for each rule.
    pub fn flags(&self) -> String {
        let mut s = String::with_capacity(3);
        s.push(if self.autoexec { 'A' } else { '-' });
        s.push(if self.write { 'W' } else { '-' });
        s.push(if self.execute { 'X' } else { '-' });
        s
    }

    /// The flags as names, as the public stoQ mraptor plugin reports them.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.autoexec {
            v.push("AutoExec");
        }
        if self.write {
            v.push("Write");
        }
        if self.execute {
            v.push("Execute");
        }
        v
    }
}

fn keywords(re: &Regex, code: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for m in re.find_iter(code) {
        crate::util::push_unique(&mut out, m.as_str());
        if out.len() >= 1000 {
            break;
        }
    }
    out
}

/// Run MacroRaptor on `code` (all modules' source, concatenated).
pub fn scan(code: &str) -> Verdict {
    let code = collapse_long_lines(code);
    let r = rules();
    let mut v = Verdict {
        autoexec_keywords: keywords(&r.autoexec, &code),
        write_keywords: keywords(&r.write, &code),
        execute_keywords: keywords(&r.execute, &code),
        ..Verdict::default()
    };
    for (re, flag) in [
        (&r.autoexec, &mut v.autoexec),
        (&r.write, &mut v.write),
        (&r.execute, &mut v.execute),
    ] {
        if let Some(m) = re.find(&code) {
            *flag = true;
            v.matches.push(m.as_str().to_string());
        }
    }
    v.suspicious = v.autoexec && (v.write || v.execute);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_compile() {
        assert!(rules().autoexec.is_match("autoopen"));
        assert!(rules().write.is_match("KILL"));
        assert!(rules().execute.is_match("shell"));
    }

    #[test]
    fn verdicts() {
        let v = scan("Sub AutoOpen()\n  Shell \"calc.exe\"\nEnd Sub\n");
        assert_eq!(v.flags(), "A-X");
        assert!(v.suspicious);
        assert_eq!(v.matches, ["AutoOpen", "Shell"]);

        let v = scan("Private Sub Document_Open()\nOpen \"x\" For Output As #1\nEnd Sub");
        assert_eq!(v.flags(), "AW-");
        assert_eq!(v.matches, ["Document_Open", "Open \"x\" For Output"]);
        assert_eq!(v.flag_names(), ["AutoExec", "Write"]);

        // Continuation lines are joined before the one-line rules run.
        let v = scan("Private Declare Function X _\n Lib \"kernel32\" ()");
        assert_eq!(v.flags(), "--X");

        // Word boundaries: "Shellfish" and "KillJoy" are not keywords.
        let v = scan("Dim Shellfish, KillJoy\nSub CommandButton1_Click()\nEnd Sub");
        assert_eq!(v.flags(), "A--");
        assert!(!v.suspicious);
        assert_eq!(v.matches, ["CommandButton1_Click"]);

        let v = scan("Sub Workbook_Open()\nCreateObject(\"WScript.Shell\").Run \"x\"\nEnd Sub");
        assert_eq!(v.execute_keywords, ["CreateObject", "Shell", "Run"]);
        assert_eq!(scan("").flags(), "---");
    }
}
