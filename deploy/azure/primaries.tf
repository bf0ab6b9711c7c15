# The primaries: three virtual machines, one per availability zone,
# each told its index; or, with external_services = false, the one
# demo node.  They are the gateway's backend pool.

locals {
  node_count = var.external_services ? 3 : 1
  image = {
    publisher = "Canonical"
    offer     = "ubuntu-24_04-lts"
    sku       = "server"
    version   = "latest"
  }
}

resource "azurerm_network_interface" "primary" {
  count               = local.node_count
  name                = "${var.name}-primary-${count.index + 1}"
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags

  ip_configuration {
    name                          = "node"
    subnet_id                     = var.node_subnet_id
    private_ip_address_allocation = "Dynamic"
  }
}

resource "azurerm_network_interface_security_group_association" "primary" {
  count                     = local.node_count
  network_interface_id      = azurerm_network_interface.primary[count.index].id
  network_security_group_id = azurerm_network_security_group.node.id
}

resource "azurerm_linux_virtual_machine" "primary" {
  count                 = local.node_count
  name                  = var.external_services ? "${var.name}-primary-${count.index + 1}" : "${var.name}-demo"
  resource_group_name   = var.resource_group_name
  location              = var.location
  zone                  = element(var.zones, count.index)
  size                  = var.primary_vm_size
  admin_username        = "azureuser"
  network_interface_ids = [azurerm_network_interface.primary[count.index].id]
  custom_data           = base64encode(local.primary_user_data[count.index])
  tags                  = var.tags

  admin_ssh_key {
    username   = "azureuser"
    public_key = var.ssh_public_key
  }
  os_disk {
    caching              = "ReadWrite"
    storage_account_type = "Premium_LRS"
    disk_size_gb         = var.os_disk_size
  }
  source_image_reference {
    publisher = local.image.publisher
    offer     = local.image.offer
    sku       = local.image.sku
    version   = local.image.version
  }
  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.primary.id]
  }

  lifecycle {
    precondition {
      condition     = !var.external_services || (var.postgresql_address != "" && var.storage_account != "" && var.storage_account_key != "")
      error_message = "external_services = true needs postgresql_address, storage_account and storage_account_key."
    }
    precondition {
      condition     = var.vault_addr == "" || var.vault_token != "" || (var.vault_role_id != "" && var.vault_secret_id != "")
      error_message = "vault_addr needs vault_token or vault_role_id and vault_secret_id."
    }
  }
  # the secrets and the grants are in place before the node asks
  depends_on = [azurerm_role_assignment.secret_reader,
  azurerm_role_assignment.certificate_reader]
}
