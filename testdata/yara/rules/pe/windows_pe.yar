// Rules written for the stoQ Rust test suite (same licence as the project).
import "pe"

rule pe_dos_stub : pe windows
{
    meta:
        description = "MZ header and the DOS stub message"
        author = "stoQ Rust contributors"
        score = 10
        confidence = 0.5
        triage = false
    strings:
        $mz = { 4D 5A }
        $stub = "This program cannot be run in DOS mode"
        $pe = { 50 45 00 00 }
    condition:
        $mz at 0 and $stub and $pe
}

rule pe_i386_console
{
    meta:
        description = "32-bit x86 console executable (pe module)"
    condition:
        pe.is_pe and pe.machine == pe.MACHINE_I386 and
        pe.subsystem == pe.SUBSYSTEM_WINDOWS_CUI and
        pe.imports("KERNEL32.dll", "CreateProcessA")
}

rule pe_process_apis
{
    meta:
        description = "imports that start and wait for a process"
    strings:
        $create = "CreateProcessA"
        $wait = "WaitForSingleObject"
        $exit = "GetExitCodeProcess"
        $crt = /\.CRT\$X[A-Z]{1,3}/
    condition:
        uint16(0) == 0x5A4D and all of ($create, $wait, $exit) and #crt > 3
}
