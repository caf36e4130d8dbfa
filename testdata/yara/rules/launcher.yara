// Rules written for the stoQ Rust test suite (same licence as the project).
rule setuptools_launcher : launcher
{
    meta:
        description = "setuptools/distlib script launcher"
        binary = "\x01\xffraw"
    strings:
        $shebang = "#!python.exe"
        $script = "-script.py"
        $msg = "Cannot find Python executable" nocase
    condition:
        2 of them
}

rule named_like_an_executable
{
    meta:
        description = "uses the filename and extension externals"
    condition:
        extension == ".exe" and filename startswith "cli-"
}

private rule has_mz
{
    condition:
        uint16(0) == 0x5A4D
}

rule mz_and_external_filepath
{
    condition:
        has_mz and filepath endswith "samples/cli-32.exe"
}

rule never_matches
{
    strings:
        $a = "this string is not in the sample"
    condition:
        $a
}
