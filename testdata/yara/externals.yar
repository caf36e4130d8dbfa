// Rules written for the stoQ Rust test suite (same licence as the project).
rule filename_is_set
{
    condition:
        filename == "invoice.pdf.exe" and extension == ".exe"
}

rule owner_and_filetype
{
    condition:
        owner == "alice" and filetype == "EXE" and filepath == "/srv/in/invoice.pdf.exe"
}

rule any_content
{
    condition:
        filesize > 0 and filename == ""
}
