"""Checklist templates: import, edit as new versions, archive, export back to Markdown."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .. import markdown as md
from ..errors import RuleError
from ..models import ChecklistTemplate, TemplateItem, TemplateSection, TemplateVersion, unique_slug


def _save_outline(document: md.Document, *, section_model, item_model, owner: dict) -> None:
    """Write a parsed tree as rows, keeping document order in `position`."""
    position = 0

    def save_items(items, section, parent, depth):
        nonlocal position
        for item in items:
            position += 1
            row = item_model.objects.create(
                **owner,
                section=section,
                parent=parent,
                position=position,
                depth=depth,
                text=item.text,
                body=item.body,
                marker=item.marker,
                optional=item.optional,
                check_kind=item.check.kind if item.check else "",
                check_params=dict(item.check.params) if item.check else {},
            )
            save_items(item.children, section, row, depth + 1)

    def save_sections(sections, parent):
        nonlocal position
        for section in sections:
            position += 1
            row = section_model.objects.create(
                **owner,
                parent=parent,
                position=position,
                level=section.level,
                title=section.title,
                body=section.body,
                optional=section.optional,
                after_go_live=section.after_go_live,
                roles=list(section.roles),
                role_counts=dict(section.role_counts),
                four_eyes=section.four_eyes,
                footer=section.footer,
            )
            save_items(section.items, row, None, 0)
            save_sections(section.children, row)

    save_items(document.items, None, None, 0)
    save_sections(document.sections, None)


def _version_create(template: ChecklistTemplate, document: md.Document, *, actor, source: str = "") -> TemplateVersion:
    last = template.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = TemplateVersion.objects.create(
        template=template,
        number=last + 1,
        name=template.name,
        description=document.description,
        required_roles=document.roles,
        role_counts=document.role_counts,
        four_eyes=document.four_eyes,
        item_count=document.item_count,
        section_count=document.section_count,
        check_count=document.check_count,
        source=source,
        created_by=actor,
    )
    _save_outline(document, section_model=TemplateSection, item_model=TemplateItem, owner={"version": version})
    return version


@transaction.atomic
def template_import(document: md.Document, *, name: str | None = None, actor=None, source: str = "") -> TemplateVersion:
    """Import always makes a new template; a clashing slug gets -2, -3 ..."""
    name = (name or document.name or "").strip()
    if not name:
        raise RuleError("The checklist has no `# ` heading: give it a name.")
    template = ChecklistTemplate.objects.create(
        name=name[:200], slug=unique_slug(ChecklistTemplate, name), created_by=actor
    )
    return _version_create(template, document, actor=actor, source=source)


@transaction.atomic
def template_version_create(template: ChecklistTemplate, document: md.Document, *, actor, name: str | None = None) -> TemplateVersion:
    """Saving an edit makes a new version; runs keep the copy they started from."""
    template = ChecklistTemplate.objects.select_for_update().get(pk=template.pk)
    if name and name != template.name:
        template.name = name[:200]
        template.save(update_fields=["name"])
    return _version_create(template, document, actor=actor)


@transaction.atomic
def template_archive(template: ChecklistTemplate, *, actor, archived: bool = True) -> ChecklistTemplate:
    template.archived_at = timezone.now() if archived else None
    template.save(update_fields=["archived_at"])
    return template


def outline_document(*, name: str, description: str, sections, items) -> md.Document:
    """Rebuild the parsed tree from rows (a template version's or a run's), for export."""
    sections = sorted(sections, key=lambda s: s.position)
    items = sorted(items, key=lambda i: i.position)
    item_nodes = {}
    section_nodes = {}
    doc = md.Document(name=name, description=description)
    for s in sections:
        node = md.Section(
            title=s.title,
            level=s.level,
            body=s.body,
            optional=s.optional,
            after_go_live=s.after_go_live,
            roles=list(s.roles or []),
            footer=s.footer,
            role_counts=dict(s.role_counts or {}),
            four_eyes=s.four_eyes,
        )
        section_nodes[s.pk] = node
        (section_nodes[s.parent_id].children if s.parent_id else doc.sections).append(node)
    for i in items:
        check = md.Check(kind=i.check_kind, params=dict(i.check_params)) if i.check_kind else None
        node = md.Item(text=i.text, body=i.body, marker=i.marker or " ", optional=i.optional, check=check)
        item_nodes[i.pk] = node
        if i.parent_id:
            item_nodes[i.parent_id].children.append(node)
        elif i.section_id:
            section_nodes[i.section_id].items.append(node)
        else:
            doc.items.append(node)
    return doc


def version_document(version: TemplateVersion) -> md.Document:
    return outline_document(
        name=version.name,
        description=version.description,
        sections=version.sections.all(),
        items=version.items.all(),
    )


def template_export(version: TemplateVersion) -> str:
    return md.render(version_document(version))


def suggested_checks_attach(document: md.Document) -> int:
    """Give every item without a check the first check the suggester finds for it (the
    parsed tree only: nothing is saved). Answers how many it attached."""
    from ..verifications.suggest import suggest

    attached = 0
    for item, _ in document.iter_items():
        if item.check is None:
            found = suggest(item.text, item.body)
            if found:
                kind, params = found[0][0], found[0][1]
                item.check = md.Check(kind=kind, params=dict(params))
                attached += 1
    return attached


def document_variables(document: md.Document) -> list[str]:
    """Every `{{ name }}` the document's checks use, in order of first use."""
    from ..verifications import registry

    names: dict[str, None] = {}
    for item, _ in document.iter_items():
        if item.check is not None:
            for name in registry.placeholders(item.check.params):
                names.setdefault(name, None)
    return list(names)
