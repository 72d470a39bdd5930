from scripts.generate_db_diagram import OUTPUT, render


def test_committed_diagram_is_up_to_date():
    assert OUTPUT.read_text() == render(), (
        "docs/db_diagram.md is stale; run: uv run python -m scripts.generate_db_diagram"
    )


def test_diagram_shows_every_table_and_relationship():
    content = render()
    assert "app_user {" in content
    assert 'app_user ||--o{ platform_membership : "user_id"' in content
    assert "unique case-insensitive where NOT app_user.is_deleted" in content
