"""`{{name}}` variables of a topic's prompt (`kallo.services.prompt_variables`)."""

from kallo.services import prompt_variables


def test_variables_are_listed_once_in_order():
    text = "Hi {{name}}, from {{ city }} ({{name}}); {{ not a var }} {{9x}} {{_ok2}}"
    assert prompt_variables.variables(text) == ["name", "city", "_ok2"]
    assert prompt_variables.variables("x" + "{{v}}" * 3) == ["v"]


def test_fill_replaces_known_and_empties_unknown_values():
    text = "{{name}} is {{age}}, {{flag}} {{missing}}."
    values = {"name": "Ada", "age": 36, "flag": True}
    assert prompt_variables.fill(text, values) == "Ada is 36, true ."
    assert prompt_variables.fill(text, {}) == " is ,  ."
    assert prompt_variables.fill(text, None) == text


def test_the_number_of_variables_is_bounded():
    text = " ".join(f"{{{{v{i}}}}}" for i in range(80))
    assert len(prompt_variables.variables(text)) == prompt_variables.MAX_VARIABLES
