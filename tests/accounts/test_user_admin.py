"""The user admin checks a role's place and department as the system reads them: a mistyped code
would leave the account seeing no case at all (accounts.admin.CityOpsUserChangeForm)."""

from __future__ import annotations

from typing import Any

import pytest
from django.forms.models import model_to_dict
from django.test import Client
from django.utils import translation

from accounts.admin import CityOpsUserChangeForm
from accounts.models import Role, User
from tests.incidents.cases import COMMUNITY, GRID, STREET, make_user

pytestmark = pytest.mark.django_db


def _form(user: User, **changes: Any) -> CityOpsUserChangeForm:
    data = {**model_to_dict(user), **changes}
    data = {key: value for key, value in data.items() if value is not None}
    return CityOpsUserChangeForm(data=data, instance=user)


@pytest.mark.parametrize(
    ("role", "place", "department"),
    [
        (Role.DISTRICT_OPERATOR, "440309", ""),
        (Role.STREET_OPERATOR, STREET, ""),
        (Role.COMMUNITY_STAFF, COMMUNITY, ""),
        (Role.GRID_WORKER, GRID, ""),
        (Role.GRID_WORKER, COMMUNITY, ""),  # a grid worker may cover a whole community
        (Role.DEPARTMENT_HANDLER, "", "CGJ"),
        (Role.AUDITOR, "", ""),
    ],
)
def test_a_place_and_department_the_system_knows_are_accepted(role, place, department) -> None:
    form = _form(make_user(), role=role, place_code=place, department_code=department)
    assert form.is_valid(), form.errors


def test_a_mistyped_code_is_refused_naming_the_field() -> None:
    user = make_user()
    with translation.override("zh-hans"):
        unknown = _form(user, role=Role.DEPARTMENT_HANDLER, department_code="CGX")
        assert unknown.errors == {"department_code": ["“CGX”不是已知的部门代码。"]}
        missing = _form(user, role=Role.DEPARTMENT_HANDLER, department_code="")
        assert missing.errors == {"department_code": ["职能部门处置人员须填写所属部门代码。"]}
        nowhere = _form(user, role=Role.STREET_OPERATOR, place_code="440309999")
        assert nowhere.errors == {"place_code": ["启用的边界版本中没有代码为 440309999 的区域。"]}
        # Said in words, not as the database constraint's name.
        no_place = _form(user, role=Role.GRID_WORKER, place_code="")
        assert no_place.errors == {"place_code": ["该角色须填写所属区域代码。"]}
        wrong_level = _form(user, role=Role.STREET_OPERATOR, place_code=COMMUNITY)
        assert wrong_level.errors == {
            "place_code": [f"{COMMUNITY} 是社区，该角色的所属区域应为街道。"]
        }
    with translation.override("en"):
        grid = _form(user, role=Role.GRID_WORKER, place_code=STREET)
        assert grid.errors == {
            "place_code": [f"{STREET} is a Street; this role's place is a Grid cell or Community."]
        }


def test_the_admin_page_refuses_it_and_stores_nothing() -> None:
    admin = User.objects.create_superuser("root", password=None)
    handler = make_user(Role.DEPARTMENT_HANDLER, department="CGJ")
    client = Client()
    client.force_login(admin)
    url = f"/admin/accounts/user/{handler.pk}/change/"
    data = {
        **{k: v for k, v in model_to_dict(handler).items() if v is not None},
        "department_code": "CGX",
        "date_joined_0": handler.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": handler.date_joined.strftime("%H:%M:%S"),
    }
    data.pop("date_joined", None)
    data.pop("groups", None)
    data.pop("user_permissions", None)
    response = client.post(url, data)
    assert response.status_code == 200  # the form again, with the reason
    assert "不是已知的部门代码" in response.content.decode()
    handler.refresh_from_db()
    assert handler.department_code == "CGJ"
